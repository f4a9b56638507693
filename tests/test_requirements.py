"""No hidden requirement (issue #26): every notebook name and every performance threshold a hidden check
needs is written in its question and tested by its visible check, in every assignment.

Read statically from the checks (no execution): the names are the string literals of a check function
that the solution notebook binds (``get(ns, "lst_loss_sgd")``, ``_experience(ns, "experience_neurones",
…)``); a name is *introduced* by the first question whose check reads it, and must appear in that
question's text (the markdown cells since the previous test cell, or the given code of its answer
cells) and in its visible check. The thresholds are the constants a check function names whose kind is a
requirement on the student's result (a test accuracy floor, a final loss, a minimum number of
iterations, a parameter range): their value must appear in the question's text and in its visible
check. The other constants are tolerances a correct answer sits far from (docs/thresholds.md)."""
import ast
import inspect
import re

import pytest

from tpkit import labels, paths, selfcheck
from tpkit.checks import CHECKS
from tpkit.submissions import read
from tpkit.vocabulary import grade_id, is_answer, strip_solution_markers as strip_markers

ASSIGNMENTS = ("tp_reseaux_neurones", "tp_pima_jouet", "tp_soyez_curieux")
REQUIREMENT = re.compile(r"(_ACC_MIN|_NITER_MIN|_FINAL_LOSS_MAX|_PARAMS_MIN|_PARAMS_MAX)$")

#: literals that are bound by the notebook but read by a check as something else, with the reason
NOT_NAMES = {
    ("tp_pima_jouet", "j4_donnees", "x"): "key 'x' of toy2d.npz, compared with x2",
    ("tp_pima_jouet", "j4_donnees", "y"): "key 'y' of toy2d.npz, compared with y2",
    ("tp_pima_jouet", "j4_donnees", "xt"): "key 'xt' of toy2d.npz, compared with xt2",
    ("tp_pima_jouet", "j4_donnees", "yt"): "key 'yt' of toy2d.npz, compared with yt2",
}


def _bound_names(nb) -> set:
    """Top-level names bound by the solution notebook's code (assignments, def, class, for, import)."""
    names = set()
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        source = "\n".join(line for line in strip_markers(c.source).splitlines() if not line.lstrip().startswith("%"))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            for sub in ast.walk(node) if isinstance(node, (ast.For, ast.With, ast.If, ast.Try)) else [node]:
                if isinstance(sub, (ast.FunctionDef, ast.ClassDef)):
                    names.add(sub.name)
                elif isinstance(sub, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For)):
                    targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
                    names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
                elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                    names |= {(a.asname or a.name).split(".")[0] for a in sub.names}
    return names


def _literals(fn) -> set:
    tree = ast.parse(inspect.getsource(fn).lstrip())
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and n.value.isidentifier()}


def _constants(fn) -> dict:
    """Requirement constants a check names: {name: value} (module globals or attributes of a module)."""
    found = {}
    glob = fn.__globals__
    for name in fn.__code__.co_names:
        if not REQUIREMENT.search(name):
            continue
        if name in glob:
            found[name] = glob[name]
        else:
            for mod in (v for v in glob.values() if inspect.ismodule(v)):
                if hasattr(mod, name):
                    found[name] = getattr(mod, name)
    return found


def _flat(text: str) -> str:
    return re.sub(r"(?<=\d)[ \u00a0\u202f](?=\d)", "", text)


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", text) is not None


def _questions(assignment: str):
    """(grade id, question text, given code, visible check) of each autograded test cell, in order."""
    nb = read(paths.source_notebook(assignment))
    out, text, given = [], [], []
    for c in nb.cells:
        gid = grade_id(c)
        if c.cell_type == "markdown":
            if not c.metadata.get("nbgrader", {}).get("grade"):
                text.append(c.source)
        elif c.metadata.get("nbgrader", {}).get("grade"):
            visible = c.source.split("### END HIDDEN TESTS\n")[-1]
            out.append((gid, "\n".join(text), "\n".join(given), visible))
            text, given = [], []
        elif is_answer(c):
            given.append(re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "", c.source, flags=re.S))
    return nb, out


def requirements(assignment: str) -> dict:
    """grade id -> (introduced names, {threshold name: value})."""
    nb, questions = _questions(assignment)
    bound = _bound_names(nb)
    setup = selfcheck.given_setup(selfcheck.setup_cell(nb).source)
    seen = _bound_names(type(nb)(cells=[selfcheck.setup_cell(nb)]))
    out = {}
    for gid, *_ in questions:
        fn = CHECKS[gid]
        names = {n for n in _literals(fn) & bound if (assignment, gid, n) not in NOT_NAMES} - seen
        seen |= names
        out[gid] = (sorted(names), _constants(fn))
    assert setup
    return out


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_hidden_requirement_is_written_in_its_question_and_visible_check(assignment):
    nb, questions = _questions(assignment)
    found = labels.labels_of(nb)
    reqs = requirements(assignment)
    missing, counted = [], 0
    for gid, text, given, visible in questions:
        names, constants = reqs[gid]
        for name in names:
            counted += 1
            if not (_mentions(text, name) or _mentions(given, name)):
                missing.append(f"{found[gid].short}: `{name}` not named in the question")
            if not _mentions(visible, name):
                missing.append(f"{found[gid].short}: `{name}` not tested by the visible check")
        for cname, value in constants.items():
            values = value if isinstance(value, tuple) else (value,)
            for v in values:
                counted += 1
                if f"{v:g}" not in _flat(text):
                    missing.append(f"{found[gid].short}: {cname} = {v:g} not stated in the question")
                if f"{v:g}" not in _flat(visible):
                    missing.append(f"{found[gid].short}: {cname} = {v:g} not in the visible check")
    assert counted > 10
    assert not missing, "\n".join(missing)
