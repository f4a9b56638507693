"""Small tools shared by the hidden checks: failure type, calls into student code through the
witness, and comparisons done on objects the checks create themselves."""
from __future__ import annotations

import contextlib
import io
import math
import numbers
import warnings

import numpy as np
import torch

from tpkit.witness import Remote, StudentError

# References taken when the kit is imported, before any check runs student code.
_allclose = torch.allclose
_isfinite = torch.isfinite
_tensor = torch.tensor


class CheckFailed(Exception):
    """A check failed; the message is French and is shown to the student."""


def fail(message: str):
    raise CheckFailed(message)


@contextlib.contextmanager
def quiet():
    """Silence warnings and stderr of student code: nbgrader zeroes a test cell that writes
    to stderr, and a warning is no mistake."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            yield


_MISSING = object()


def get(ns, name: str, what: str | None = None):
    """A snapshot of a variable of the notebook (`ns` is a Witness), or a French failure when it
    does not exist."""
    value = ns.get(name, _MISSING)
    if value is _MISSING:
        fail(f"la variable `{name}` n'existe pas{' (' + what + ')' if what else ''} : "
             "la cellule a-t-elle été complétée et exécutée sans erreur ?")
    return value


def student_call(fn_name: str, thunk):
    """Run a call into the student's code (`thunk()`); an exception it raised becomes a French
    failure."""
    try:
        return thunk()
    except StudentError as exc:
        if exc.etype == "NotImplementedError":
            fail(f"`{fn_name}` n'est pas encore écrite (NotImplementedError).")
        fail(f"l'appel {fn_name}(...) a levé une erreur : {exc.etype}: {exc.message}")


def call(fn_name: str, fn, *args):
    """Call a student function (a Remote) on the check's inputs."""
    if not isinstance(fn, Remote):
        fail(f"`{fn_name}` doit être une fonction.")
    return student_call(fn_name, lambda: fn(*args))


def vjp(fn_name: str, fn, args, wrt, cotangent):
    """Gradients of <fn(*args), cotangent> with respect to args[i], i in wrt (autograd in the kernel)."""
    return student_call(fn_name, lambda: fn.vjp(args, wrt, cotangent))


def as_float64(value, name: str) -> torch.Tensor:
    """A detached float64 copy of a tensor or array the student produced."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().to(torch.float64)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value, dtype=np.float64))
    fail(f"`{name}` doit être un tenseur torch (reçu : {type(value).__name__}).")


def require_tensor(value, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        hint = " : convertissez-le avec th.tensor(...)" if isinstance(value, np.ndarray) else ""
        fail(f"`{name}` doit être un tenseur torch (reçu : {type(value).__name__}){hint}.")
    return value


def finite_tensor(ns, name: str) -> torch.Tensor:
    """The tensor `name` of the notebook, with no NaN or infinity (French failures otherwise)."""
    return require_finite(require_tensor(get(ns, name), name), name)


def require_shape(t, shape, name: str, hint: str = ""):
    got = tuple(t.shape)
    if got != tuple(shape):
        if len(got) == 2 and got == tuple(shape)[::-1]:
            hint = hint or " (transposé ?)"
        fail(f"`{name}` a la taille {got} au lieu de {tuple(shape)}{hint}.")


def as_number(value) -> float | None:
    """The one notion of "a number" shared by every check: a Python int or float, a numpy scalar,
    or a 0-d / size-1 array or tensor of any real dtype (float32, float64, int...); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and \
            (value.dtype.is_floating_point or value.dtype in _INT_DTYPES):
        return float(value.detach().reshape(()).to(torch.float64))
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "fiu":
        return float(value.reshape(()).astype(np.float64))
    return None


_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def require_number(value, name: str) -> float:
    """A finite number (`as_number`), or a French failure."""
    number = as_number(value)
    if number is None:
        fail(f"`{name}` doit être un nombre (reçu : {type(value).__name__}).")
    if not math.isfinite(number):
        fail(f"`{name}` vaut {number} : {NON_FINITE}.")
    return number


# ---------------------------------------------------------------- comparisons that fail closed
# NaN compares false with everything: `if err > tol: fail(...)` lets a NaN error pass, and
# `err <= tol` lets -inf pass. Every comparison of a measured value with a tolerance or a threshold
# goes through the helpers below, which answer False unless the value is a finite real number
# (tests/test_fail_closed.py finds any other).

def _finite_real(value) -> float | None:
    """`value` as a finite float (Python or numpy number, size-1 tensor or array), else None."""
    number = as_number(value)
    return number if number is not None and math.isfinite(number) else None


def within(err, tol) -> bool:
    """True when the error `err` is a finite number and err <= tol (a NaN or an infinity: False)."""
    err, tol = _finite_real(err), _finite_real(tol)
    return err is not None and tol is not None and err <= tol


def under(value, limit) -> bool:
    """True when `value` is a finite number strictly below `limit`."""
    value, limit = _finite_real(value), _finite_real(limit)
    return value is not None and limit is not None and value < limit


def at_least(value, low) -> bool:
    """True when `value` is a finite number and value >= low."""
    value, low = _finite_real(value), _finite_real(low)
    return value is not None and low is not None and value >= low


def between(value, low, high) -> bool:
    """True when `value` is a finite number in [low, high]."""
    value, low, high = _finite_real(value), _finite_real(low), _finite_real(high)
    return value is not None and low is not None and high is not None and low <= value <= high


def all_finite(t) -> bool:
    """Every entry of a tensor or array is finite (no NaN, no inf); a number: it is finite."""
    if isinstance(t, torch.Tensor):
        return bool(_isfinite(t.detach()).all())
    if isinstance(t, np.ndarray):
        return t.dtype.kind in "biuf" and bool(np.isfinite(t).all())
    return _finite_real(t) is not None


def close(a: torch.Tensor, b: torch.Tensor, rtol=1e-7, atol=1e-10) -> bool:
    """Same shape, both finite, and allclose, on float64 tensors created by the checks."""
    return a.shape == b.shape and all_finite(a) and all_finite(b) and \
        bool(_allclose(a, b, rtol=rtol, atol=atol))


NON_FINITE = "valeur non finie (NaN ou inf)"


def require_finite(value, name: str):
    """A tensor, array or number the student produced, refused (French failure) when it holds a
    NaN or an infinity; returned unchanged otherwise."""
    if not all_finite(value):
        fail(f"`{name}` contient une {NON_FINITE} : le calcul a-t-il divergé, ou la valeur "
             "a-t-elle été écrite à la main ?")
    return value


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """CS231n relative error: max |a-b| / max(|a|+|b|, 1e-8); inf when either holds a NaN or an
    infinity (inf, unlike NaN, also survives Python's max() of several errors)."""
    if not (all_finite(a) and all_finite(b)):
        return math.inf
    return float(((a - b).abs() / torch.clamp(a.abs() + b.abs(), min=1e-8)).max())


def number_list(values, name: str, length: int | None = None) -> list[float]:
    """The one notion of "a list of numbers": a list or tuple whose items are numbers (`as_number`:
    floats, 0-d arrays from loss.detach().numpy(), detached 0-d tensors...). A tensor still attached
    to the computation graph is refused: the statement asks for float(loss), and such a list keeps
    every iteration's graph alive."""
    if not isinstance(values, (list, tuple)):
        fail(f"`{name}` doit être une liste (reçu : {type(values).__name__}).")
    if length is not None and len(values) != length:
        fail(f"`{name}` contient {len(values)} valeurs au lieu de {length} "
             "(une valeur par itération ; la liste est-elle remise à zéro avant la boucle ?).")
    if any(isinstance(v, torch.Tensor) and v.requires_grad for v in values):
        fail(f"`{name}` contient des tenseurs reliés au graphe de calcul : ajoutez des nombres avec "
             f"{name}.append(float(loss)).")
    out = []
    for v in values:
        number = as_number(v)
        if number is None:
            fail(f"`{name}` doit contenir des nombres (trouvé : {type(v).__name__}).")
        out.append(number)
    if not all(math.isfinite(v) for v in out):
        fail(f"`{name}` contient une {NON_FINITE} : l'apprentissage a divergé.")
    return out


def require_loaded_arrays(ns, expected: dict, filename: str):
    """Each `name` of the namespace holds the array `expected[name]` read from `filename` (a numpy
    array, or a tensor of it); the loading questions of every assignment."""
    for name, good in expected.items():
        value = get(ns, name)
        if isinstance(value, torch.Tensor):
            value = value.detach().numpy()
        if not isinstance(value, np.ndarray):
            fail(f"`{name}` doit être le tableau numpy lu dans {filename}.")
        if value.shape != good.shape or not np.array_equal(value, good):
            fail(f"`{name}` ne correspond pas au tableau '{name}' de {filename} "
                 "(x, y : apprentissage ; xt, yt : test).")
