"""The course's assignments: one package per assignment, all of one shape, and the registry that the
release, the grading, the catalogue, the flakiness audit and the exports iterate over.

``tpkit/assignments/<name>/`` is named like the assignment (``source/<name>/<name>.ipynb``) and holds
the same files for every assignment, so that adding one is copying a package, not learning a scheme:

* ``__init__.py``  -- ``ASSIGNMENT = Assignment(...)``: what the kit needs of it (below);
* ``checks/``      -- its hidden checks and repairs, one module per section of the notebook (importing
  the package registers them in :mod:`tpkit.checks.registry`);
* ``reference.py`` -- the reference computations its checks compare with;
* ``thresholds.py``-- ``LIMITS``: every threshold once, with its direction and what calibrated it;
* ``calibration.py`` -- ``python -m tpkit.assignments.<name>.calibration``: the spread behind LIMITS;
* ``reexec.py``    -- its training cells re-run from a state the grader draws (when it has some);
* ``probes.py``    -- ``PROBES``, ``limits()``, ``margin()``: the flakiness audit's measures;
* ``mistakes.py`` and ``variants.py`` -- its catalogue: ``MISTAKES`` the checks must catch,
  ``VARIANTS`` they must accept. Two files, not one ``catalogue.py``: a catalogue grows to hundreds of
  lines per kind (the main one is 600), and the two lists are read and reviewed apart.

A package may hold more where its assignment needs it (the main TP: ``imposed.py``, the values its
statement imposes, read from the source notebook; ``generalisation.py``, a second catalogue generation
with its own report section). What only glues an assignment's grade ids to shared code (the self-check's dependency graph, the
numbers its model answers quote, the catalogue entries its examples apply) is data, kept in
``__init__.py``. Shared machinery stays shared: :mod:`tpkit.checks` (registry, tools, common helpers,
generic re-execution), :mod:`tpkit.catalogue` (entries, runner, flakiness, visibility).

Only an assignment's package and the command lines (their ``--assignment`` default: the first of
:func:`names`) may name an assignment (``tests/test_layout.py``): library code takes the assignment as
a required argument and asks this registry for the rest.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from tpkit import paths


@dataclass(frozen=True)
class Number:
    """A number a model answer quotes (:mod:`tpkit.modelanswers`), read from the reference run."""
    name: str
    after: str          # grade id of the cell that makes it
    expr: str = ""      # read in the kernel right after that cell...
    printed: str = ""   # ...or from that cell's printed output (a regex with one group)
    fmt: str = "{:.4f}"  # a format string, or "%" (a percentage, French style: « 97.6 % »)

    def text(self, value: float) -> str:
        if self.fmt == "%":
            return f"{100 * value:.1f} %"
        return self.fmt.format(int(value) if self.fmt.endswith("d}") else value)


@dataclass(frozen=True, eq=False)
class Assignment:
    """Everything the kit needs of one assignment. Module fields are dotted names, imported on use
    (:meth:`module`): the registry itself imports no torch."""
    name: str                      # the folder source/<name>/ and the notebook <name>.ipynb
    order: int                     # rank in the course (the first is the command lines' default)
    package: str                   # the assignment's package, e.g. tpkit.assignments.<name>
    aliases: tuple = ()            # short names its modules use (tests/test_layout.py looks for them too)
    checks: str = ""               # imported to register its checks and repairs
    reference: str = ""
    thresholds: str = ""           # LIMITS
    calibration: str = ""
    reexec: str = ""               # "" when no training cell is re-run
    probes: str = ""               # PROBES, limits(), margin()
    mistakes: str = ""             # MISTAKES
    variants: str = ""             # VARIANTS
    experiment_cells: tuple = ()   # ungraded experiment cells the catalogue empties
    seeded_cells: tuple = ()       # cells whose seed calls the flakiness audit replaces
    hidden_reasons: dict = field(default_factory=dict)  # mistake -> why its visible check stays silent
    prerequisites: dict = field(default_factory=dict)  # grade id -> graded questions its visible check uses
    model_answers: tuple = ()      # Number, in the order the model answers are filled
    example_edits: dict = field(default_factory=dict)  # the nine examples' edits (tpkit.examples); none:
    typical: tuple = ()            # reference, vierge and erreurs_typiques: these catalogue entries together
    catalogue_doc: str = ""        # where `python -m tpkit.catalogue --doc` writes its report
    catalogue_test: str = ""       # the test that checks that report's figures
    generalisation: str = ""       # a module adding a section to that report (markdown(report)), if any
    thresholds_doc: str = ""       # where its calibration's figures are written (calibration --out)
    exports_in_root: bool = False  # its exports in exports/ itself, not exports/<name>/ (exports_dir)
    prewarm: str = ""              # "module:function" computed once in a fork server before the forks

    def module(self, role: str) -> ModuleType:
        """The module of field `role` (``"checks"``, ``"probes"``, ``"mistakes"``...), imported."""
        dotted = getattr(self, role)
        if not dotted:
            raise LookupError(f"assignment {self.name} has no {role} module")
        return importlib.import_module(dotted)

    def warm(self) -> None:
        """Import its checks and run its `prewarm` function, if it declares one and the course worked on
        has the assignment (a fork server, before its forks: every fork shares them; a course folder given
        --root may hold other assignments only, and a prewarm may read the assignment's notebook)."""
        self.module("checks")
        if self.prewarm and paths.source_notebook(self.name).is_file():
            module, function = self.prewarm.split(":")
            getattr(importlib.import_module(module), function)()

    def entries(self) -> list:
        """Its catalogue: mistakes then variants."""
        return list(self.module("mistakes").MISTAKES) + list(self.module("variants").VARIANTS)

    def exports(self, root: Path) -> Path:
        """Its exports folder in the course folder `root`."""
        return exports_dir(root, self.name)


@functools.lru_cache(maxsize=None)
def _registered() -> tuple:
    found = []
    for info in pkgutil.iter_modules(__path__, prefix=f"{__name__}."):
        if info.ispkg:
            declared = getattr(importlib.import_module(info.name), "ASSIGNMENT", None)
            if isinstance(declared, Assignment):
                found.append(declared)
    names = [a.name for a in found]
    if len(set(names)) != len(names):
        raise ValueError(f"two packages declare the same assignment: {sorted(names)}")
    return tuple(sorted(found, key=lambda a: (a.order, a.name)))


def registry() -> tuple:
    """Every registered assignment, in course order."""
    return _registered()


def get(name: str) -> Assignment:
    for a in _registered():
        if a.name == name:
            return a
    raise KeyError(f"unknown assignment {name!r} (known: {', '.join(a.name for a in _registered())})")


def names(root: Path | None = None) -> tuple:
    """The course's assignments in course order: the registered ones that have a
    ``source/<name>/<name>.ipynb`` in the course folder `root` (default: this kit's)."""
    root = Path(paths.ROOT if root is None else root)
    return tuple(a.name for a in _registered() if (root / "source" / a.name / f"{a.name}.ipynb").is_file())


def exports_dir(root: Path, name: str) -> Path:
    """``exports/<name>/`` for every assignment, except the one whose package keeps ``exports/`` itself
    (``exports_in_root``: the main TP's grades stay at the paths its instructors and the README know,
    ``exports/grades.csv``...). Course-level files (the run lock, the error log) are in ``exports/``."""
    base = Path(root) / "exports"
    declared = next((a for a in _registered() if a.name == name), None)
    return base if declared is not None and declared.exports_in_root else base / name


def default() -> str:
    """The command lines' default ``--assignment``: the course's first."""
    return registry()[0].name
