"""Where the kit reaches into nbgrader, nbconvert and nbclient past their public API: every patch is
here, applied explicitly (:func:`apply`, :func:`nbgrader_gradebook`), for the versions it was written
against (:func:`check_versions`, run by the grading command before anything else).

Patches (module attributes replaced):

* ``nbgrader.nbgraderformat.common.jsonschema``: nbgrader validates every cell's metadata with
  ``jsonschema.validate``, which checks the constant schema against its meta-schema each time (0.2 s of
  CPU per submission); :func:`apply` gives it a validator compiled once, with the same verdicts.
* ``Gradebook`` in the nbgrader modules that open the gradebook while a submission is graded
  (:data:`NBGRADER_GRADEBOOK_USERS`): :func:`nbgrader_gradebook` swaps in
  :class:`tpkit.grading.gradebook.RunGradebook` (one engine per database for the run).

Internals the kit's subclasses rely on (to re-read when upgrading one of the pinned versions):
``nbclient.NotebookClient`` (``kc``, ``km``, ``async_wait_for_reply``, ``_async_check_alive``,
``_get_timeout``, ``on_notebook_start``: :class:`tpkit.grading.preprocessors.LimitedExecute`);
nbgrader's ``Autograde`` and ``GenerateFeedback`` converters (their preprocessor lists and
``init_assignment``: :mod:`tpkit.grading.converters`); nbconvert's ``HTMLExporter`` (template
environment, ``_init_resources``) and ``Highlight2HTML`` (``_pygments_highlight``).
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import json
import re
import threading
import types
from importlib import metadata

from tpkit import paths

#: The packages whose internals the kit patches or subclasses; their versions are pinned in
#: requirements.txt, the one place that names them.
PATCHED = ("nbgrader", "nbconvert", "nbclient")
#: nbgrader's modules that open the gradebook while a submission is graded or its feedback written.
NBGRADER_GRADEBOOK_USERS = ("nbgrader.converters.autograde", "nbgrader.preprocessors.getgrades",
                            "nbgrader.preprocessors.overwritecells", "nbgrader.preprocessors.saveautogrades",
                            "nbgrader.preprocessors.latesubmissions", "nbgrader.preprocessors.overwritekernelspec")


class IncompatibleVersions(RuntimeError):
    """An installed package is not the version the patches were written for (French message)."""


def pinned(requirements=None) -> dict:
    """{package: version} of :data:`PATCHED` as requirements.txt pins them ({} without the file)."""
    path = requirements or paths.ROOT / "requirements.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s;#]+)", line)
        if m and m.group(1).lower() in PATCHED:
            found[m.group(1).lower()] = m.group(2)
    return found


def check_versions(requirements=None) -> None:
    """Raise :class:`IncompatibleVersions` unless each patched package has its pinned version."""
    wrong = []
    for package, version in pinned(requirements).items():
        try:
            installed = metadata.version(package)
        except metadata.PackageNotFoundError:
            installed = "absent"
        if installed != version:
            wrong.append(f"{package} {installed} (le kit est écrit pour {version})")
    if wrong:
        raise IncompatibleVersions(
            "versions non prises en charge : " + ", ".join(wrong) + ". Le kit modifie le comportement "
            "interne de ces paquets (tpkit/grading/compat.py) : réinstallez les versions de "
            "requirements.txt (make setup) avant de corriger.")


@functools.lru_cache(maxsize=8)
def _compiled_schema(schema_json: str):
    import jsonschema
    schema = json.loads(schema_json)  # keys in their order: errors print the schema as given
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_once_compiled(instance, schema) -> None:
    """``jsonschema.validate`` with each schema checked against its meta-schema and compiled once:
    the same verdict and error."""
    import jsonschema
    error = jsonschema.exceptions.best_match(_compiled_schema(json.dumps(schema)).iter_errors(instance))
    if error is not None:
        raise error


def apply() -> None:
    """Apply the module-level patches (idempotent; the workers' fork server applies them once)."""
    from nbgrader.nbgraderformat import common
    if getattr(common.jsonschema, "validate", None) is not validate_once_compiled:
        common.jsonschema = types.SimpleNamespace(validate=validate_once_compiled)


_swap_lock = threading.Lock()
_swaps = 0


@contextlib.contextmanager
def nbgrader_gradebook(cls):
    """While in this context (nested or from several threads: the outermost one restores), nbgrader's
    grading steps open their gradebook as ``cls``."""
    global _swaps
    from nbgrader.api import Gradebook
    modules = [importlib.import_module(m) for m in NBGRADER_GRADEBOOK_USERS]
    with _swap_lock:
        _swaps += 1
        if _swaps == 1:
            for m in modules:
                m.Gradebook = cls
    try:
        yield
    finally:
        with _swap_lock:
            _swaps -= 1
            if _swaps == 0:
                for m in modules:
                    m.Gradebook = Gradebook
