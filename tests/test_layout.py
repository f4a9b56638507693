"""The kit's layout, as the README says.

* The tests mirror the package: each module of ``tpkit/grading/`` has its own
  ``tests/grading/test_<module>.py`` (the command, ``__main__``, has ``test_cli.py`` and
  ``test_cli_errors.py``). A new module without a test file of its name fails here.
* Only an assignment's own package names an assignment (issue 24, item 2): library code takes the
  assignment as an argument and asks the registry (:mod:`tpkit.assignments`) for the rest, so adding
  or renaming an assignment touches its package, never the kit. The scan looks, in every file of
  ``tpkit/`` outside ``tpkit/assignments/<name>/``, for each registered assignment's name and its
  declared aliases (``Assignment.aliases``: the short names its modules use), as whole words in the
  code, its strings and its comments. The command lines are not exempt: their ``--assignment``
  default is the registry's first (:func:`tpkit.assignments.default`), so none needs a name either.
"""
from __future__ import annotations

import re
from pathlib import Path

from tpkit import assignments, paths

TPKIT = paths.ROOT / "tpkit"
#: modules whose tests live in files of another name
ELSEWHERE = {"__init__": [], "__main__": ["test_cli.py", "test_cli_errors.py"]}
#: words that are not an assignment there, and why
ALLOWED = {
    "tpkit/datasets.py": {"pima": "a data file's name (data/pima.npz), which any assignment may load"},
}


def _words() -> set:
    out = set()
    for a in assignments.registry():
        out |= {a.name, *a.aliases}
    return out


def namings(text: str, words, allowed=()) -> list:
    """(line number, word) for each whole-word occurrence of `words` in `text`, `allowed` excepted."""
    found = []
    pattern = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, sorted(words))) + r")(?![A-Za-z0-9_])")
    for number, line in enumerate(text.splitlines(), 1):
        found += [(number, m.group(1)) for m in pattern.finditer(line) if m.group(1) not in allowed]
    return found


def _in_an_assignment_package(path: Path) -> bool:
    parts = path.relative_to(TPKIT).parts
    return len(parts) > 2 and parts[0] == "assignments"


def test_no_module_outside_its_package_names_an_assignment():
    words = _words()
    offenders = []
    for path in sorted(TPKIT.rglob("*")):
        if not path.is_file() or path.suffix not in (".py", ".j2", ".html", ".txt", ".json") \
                or _in_an_assignment_package(path):
            continue
        rel = str(path.relative_to(paths.ROOT))
        offenders += [f"{rel}:{n}: {w}" for n, w in namings(path.read_text(encoding="utf-8"), words,
                                                            ALLOWED.get(rel, {}))]
    assert not offenders, "assignment named outside its package: " + "; ".join(offenders)


def test_every_assignment_has_its_words_and_the_scan_finds_them():
    words = _words()
    for a in assignments.registry():
        assert a.aliases, f"{a.name}: declare the short names its modules use (aliases)"
        # the scan catches a planted name and alias, as a word only (not inside a longer identifier)
        planted = f"x = {a.name!r}\nfrom tpkit.checks import {a.aliases[0]}\nother_{a.aliases[0]}x = 1\n"
        assert namings(planted, words) == [(1, a.name), (2, a.aliases[0])]


def test_the_registry_module_itself_names_none():
    text = (TPKIT / "assignments" / "__init__.py").read_text(encoding="utf-8")
    assert namings(text, _words()) == []


def test_every_grading_module_has_a_test_file_of_its_name():
    tests = paths.ROOT / "tests" / "grading"
    missing = []
    for module in sorted((paths.ROOT / "tpkit" / "grading").glob("*.py")):
        names = ELSEWHERE.get(module.stem, [f"test_{module.stem}.py"])
        missing += [f"{module.name}: {name}" for name in names if not (tests / name).is_file()]
    assert missing == []
