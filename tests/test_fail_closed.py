"""Comparisons that fail closed (issue 23, item 3): a check written `if err > tol: fail(...)` accepts a
NaN error (NaN compares false with everything) and `err <= tol` accepts -inf. Every comparison of a
measured value with a tolerance or a threshold goes through the helpers of `tpkit.checks.tools`
(`within`, `under`, `at_least`, `between`), which answer False unless the value is a finite number.

The source scan's rule, over every module of `tpkit/checks/` and of each assignment's checks, reference,
re-runs and thresholds (`tpkit/assignments/<name>/`; the calibration scripts excepted: they
measure the reference offline and decide nothing, and so are the helpers' own bodies): an ordering
comparison (`<`, `<=`, `>`, `>=`) is a *tolerance comparison*, and must be one of the helpers, when
one of its operands mentions

* a threshold: a name or attribute written in capitals (`T.GRAD_REL_ERR`, `C.MB_MIN_RISE_SHARE`,
  `PIMA_LIN_TEST_ACC_MIN`), a subscript of `LIMITS`, or a name saying so (one of its ``_``-separated
  words is tol, rtol, atol, limit, threshold, seuil, minimum or maximum; ``final_max``, ``max_err``);
* a non-integral float literal (`1e-6`, `0.999`: a tolerance written in place);
* an error: a call of `rel_error`, `abs` or `math.fabs`, a method `.abs()` / `.norm()`, or a name
  saying so (a word starting with err, diff, ecart, gap, drift or margin).

Comparisons of counts, shapes and indices with integers (`len(x) >= 1`, `idx.min() < 0`) and of two
measured values (`losses[-1] < losses[0]`, whose lists `number_list` already refuses non-finite) are
left alone. `equal_nan=True` (an allclose that accepts NaN) is refused everywhere. The rule is shown
to flag each form of a synthetic bad snippet below, so that it cannot silently find nothing.
"""
import ast
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tpkit import assignments, paths
from tpkit.checks import run_check
from tpkit.checks.tools import (CheckFailed, at_least, between, close, rel_error, require_finite,
                                require_number, under, within)
from tpkit.witness import LocalTransport, Witness

CHECKS = paths.ROOT / "tpkit" / "checks"
ASSIGNMENTS = paths.ROOT / "tpkit" / "assignments"
#: an assignment's modules that judge nothing: its catalogue, probes (the audit's), calibration
NOT_CHECKS = ("calibration", "mistakes.py", "variants.py", "generalisation.py", "probes.py")
HELPERS = {"within", "under", "at_least", "between", "_finite_real", "all_finite"}
ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
THRESHOLD_WORDS = {"tol", "rtol", "atol", "limit", "limits", "threshold", "seuil", "minimum", "maximum"}
ERROR_WORDS = ("err", "diff", "ecart", "gap", "drift", "margin")
ERROR_CALLS = {"rel_error", "abs", "fabs"}
ERROR_METHODS = {"abs", "norm"}


def _identifier(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _marks(node) -> str | None:
    """Why an operand makes its comparison a tolerance comparison (None: it does not)."""
    for sub in ast.walk(node):
        name = _identifier(sub)
        if name is not None and isinstance(sub.ctx, ast.Load):
            letters = name.strip("_")
            if letters and letters.upper() == letters and any(c.isalpha() for c in letters) and len(letters) > 1:
                return f"threshold {name}"
            words = [w for w in name.lower().split("_") if w]
            if THRESHOLD_WORDS & set(words) or \
                    (len(words) > 1 and {words[0], words[-1]} & {"max", "min"}):  # final_max, not min()
                return f"threshold {name}"
            if any(w.startswith(ERROR_WORDS) for w in words):
                return f"error {name}"
        if isinstance(sub, ast.Subscript) and _identifier(sub.value) == "LIMITS":
            return "threshold LIMITS[...]"
        if isinstance(sub, ast.Constant) and isinstance(sub.value, float) and sub.value != int(sub.value):
            return f"tolerance {sub.value!r}"
        if isinstance(sub, ast.Call):
            fn = sub.func
            if isinstance(fn, ast.Name) and fn.id in ERROR_CALLS:
                return f"error {fn.id}(...)"
            if isinstance(fn, ast.Attribute) and (fn.attr in ERROR_METHODS or fn.attr == "fabs"):
                return f"error .{fn.attr}()"
    return None


def open_comparisons(source: str, filename: str = "<source>") -> list[str]:
    """The tolerance comparisons of `source` not written with the fail-closed helpers, and every
    `equal_nan=True`: ["file:line: code (why)"]."""
    tree = ast.parse(source, filename)
    exempt = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in HELPERS:
            exempt |= {id(sub) for sub in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in exempt:
            continue
        if isinstance(node, ast.Compare) and any(isinstance(op, ORDERING) for op in node.ops):
            why = next(filter(None, (_marks(side) for side in [node.left, *node.comparators])), None)
            if why:
                found.append(f"{filename}:{node.lineno}: {ast.unparse(node)} ({why})")
        if isinstance(node, ast.keyword) and node.arg == "equal_nan" and \
                not (isinstance(node.value, ast.Constant) and node.value.value is False):
            found.append(f"{filename}:{node.lineno}: equal_nan={ast.unparse(node.value)} (accepts NaN)")
    return found


def _check_modules() -> list[Path]:
    found = sorted(CHECKS.rglob("*.py")) + sorted(ASSIGNMENTS.rglob("*.py"))
    return [f for f in found if not any(n in f.name for n in NOT_CHECKS)]


def test_every_tolerance_comparison_of_the_checks_fails_closed():
    modules = _check_modules()
    assert len(modules) >= 10 and all(any(f.parent == ASSIGNMENTS / a.name / "checks" for f in modules)
                                       for a in assignments.registry())
    found = [line for f in modules for line in open_comparisons(f.read_text(encoding="utf-8"),
                                                                 str(f.relative_to(paths.ROOT)))]
    assert not found, "comparisons to write with within/under/at_least/between:\n" + "\n".join(found)


BAD = {
    "err > tol": "if err > tol:\n    fail('x')\n",
    "assert diff < 1e-6": "assert diff < 1e-6\n",
    "rel_error(...) > T.X": "if rel_error(a, b) > T.GRAD_REL_ERR:\n    fail('x')\n",
    "acc < LIMITS[...]": "if acc < LIMITS['gd_test_acc'].value:\n    fail('x')\n",
    "abs(a - b) <= rtol * b": "ok = abs(a - b) <= rtol * abs(b)\n",
    "chained range": "if not T.W_STD_MIN <= std <= T.W_STD_MAX:\n    fail('x')\n",
    "a tolerance in place": "if final <= last + 1e-9:\n    pass\n",
    "a norm": "good = float((a - b).norm()) <= 1e-6\n",
    "a named minimum": "if acc < minimum:\n    fail('x')\n",
    "a constant": "if acc < PIMA_LIN_TEST_ACC_MIN:\n    fail('x')\n",
    "ecart > seuil": "if ecart > seuil:\n    fail('x')\n",
    "equal_nan": "same = np.allclose(a, b, equal_nan=True)\n",
}
GOOD = {
    "helpers": "if not within(err, tol) or not at_least(acc, T.GD_TEST_ACC_MIN):\n    fail('x')\n",
    "counts": "if len(layers) >= 1 and idx.min() < 0 and k >= 2:\n    pass\n",
    "two measured values": "if not losses[-1] < losses[0]:\n    fail('x')\n",
    "a helper's own body": "def within(err, tol):\n    return err <= tol\n",
}


@pytest.mark.parametrize("form", sorted(BAD))
def test_the_scan_flags_each_open_comparison(form):
    assert open_comparisons(BAD[form]), form


@pytest.mark.parametrize("form", sorted(GOOD))
def test_the_scan_leaves_fail_closed_code_alone(form):
    assert not open_comparisons(GOOD[form]), form


# ------------------------------------------------------------------ the helpers
NON_FINITE = [math.nan, math.inf, -math.inf, np.float64("nan"), torch.tensor(math.nan),
              torch.tensor([math.inf]), np.array(-math.inf)]


@pytest.mark.parametrize("value", NON_FINITE, ids=repr)
def test_helpers_refuse_non_finite_values(value):
    assert not within(value, 1.0) and not under(value, 1.0)
    assert not at_least(value, 0.0) and not between(value, -1.0, 1.0)
    assert not within(0.5, value) and not at_least(0.5, value)  # a broken tolerance fails too
    with pytest.raises(CheckFailed, match=r"valeur non finie \(NaN ou inf\)"):
        require_finite(value, "x")


def test_helpers_on_finite_values_edges_included():
    assert within(1e-7, 1e-7) and not within(1.0000001e-7, 1e-7)      # the tolerance itself passes
    assert within(-0.0, 0.0) and within(0.0, -0.0)                        # negative zero is zero
    assert under(0.5, 0.6) and not under(0.6, 0.6)
    assert at_least(0.95, 0.95) and not at_least(0.9499, 0.95)
    assert between(0.005, 0.005, 0.02) and between(0.02, 0.005, 0.02) and not between(0.021, 0.005, 0.02)
    assert within(np.float32(0.5), 1) and within(torch.tensor(0.5), 1) and within(3, 3)
    assert not within("0.1", 1) and not within(None, 1) and not within(torch.ones(2), 5)
    assert require_finite(torch.ones(3), "x") is not None


def test_comparisons_of_tensors_fail_closed():
    a = torch.ones(3, dtype=torch.float64)
    nan, inf = a.clone(), a.clone()
    nan[1], inf[2] = math.nan, math.inf
    assert close(a, a) and not close(nan, nan) and not close(inf, inf) and not close(a, nan)
    assert rel_error(a, a) == 0 and rel_error(nan, a) == math.inf and rel_error(a, inf) == math.inf
    assert max(rel_error(a, a), rel_error(nan, a)) == math.inf  # survives max(), unlike NaN


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_number_read_from_the_notebook_must_be_finite(value):
    with pytest.raises(CheckFailed, match=r"valeur non finie \(NaN ou inf\)"):
        require_number(Witness(LocalTransport({"v": value})).get("v"), "v")


# ------------------------------------------------------------------ the attack: W.grad = NaN
def _section_2_state(grad_W, grad_B):
    """The notebook after section 2 with gradients written by hand instead of loss.backward()."""
    from tpkit.assignments.tp_reseaux_neurones import reference as ref
    W, B = ref.statement_init(0, ref.data()["d"])
    W.grad, B.grad = grad_W(W), grad_B(B)
    return {"W": W, "B": B}


@pytest.mark.parametrize("grads", ["nan W", "inf W", "-inf B", "nan B only"])
def test_gradient_written_non_finite_loses_q2_7(grads):
    fill = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[grads.split()[0]]
    bad = lambda t: torch.full_like(t, fill)  # noqa: E731
    zero = torch.zeros_like
    ns = _section_2_state(bad if "W" in grads else zero, bad if "B" in grads else zero)
    message = run_check("q2_gradient", Witness(LocalTransport(ns)))
    assert message and "non finie (NaN ou inf)" in message, message


def test_gradient_from_backward_still_passes():
    from tpkit.assignments.tp_reseaux_neurones import reference as ref
    W, B = ref.statement_init(0, ref.data()["d"])
    R = ref.tensors()
    ref.cout(R["Y"], ref.pred(R["X"], W, B)).backward()
    assert run_check("q2_gradient", Witness(LocalTransport({"W": W, "B": B}))) is None
