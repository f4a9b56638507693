"""The registry of assignments (tpkit.assignments): discovery, order, and what each package declares."""
from __future__ import annotations

import importlib

import pytest

from tpkit import assignments, paths
from tpkit.assignments import Assignment


def test_every_course_assignment_is_registered_in_order():
    registered = assignments.registry()
    assert all(isinstance(a, Assignment) for a in registered)
    assert [a.order for a in registered] == sorted(a.order for a in registered)
    # every folder of source/ holding its notebook has a package, and names() keeps course order
    folders = {p.name for p in (paths.ROOT / "source").iterdir() if (p / f"{p.name}.ipynb").is_file()}
    assert set(assignments.names()) == folders
    assert list(assignments.names()) == [a.name for a in registered if a.name in folders]
    assert assignments.default() == registered[0].name


def test_names_follow_the_course_folder(tmp_path):
    first, second = assignments.registry()[:2]
    for a in (second, first):
        (tmp_path / "source" / a.name).mkdir(parents=True)
        (tmp_path / "source" / a.name / f"{a.name}.ipynb").write_text("{}")
    (tmp_path / "source" / "inconnu").mkdir()
    (tmp_path / "source" / "inconnu" / "inconnu.ipynb").write_text("{}")
    assert assignments.names(tmp_path) == (first.name, second.name)


def test_get_and_unknown_name():
    a = assignments.registry()[0]
    assert assignments.get(a.name) is a
    with pytest.raises(KeyError, match="unknown assignment"):
        assignments.get("pas_un_devoir")


@pytest.mark.parametrize("a", assignments.registry(), ids=lambda a: a.name)
def test_each_package_declares_its_parts(a):
    assert a.package == f"tpkit.assignments.{a.name}"
    for role in ("checks", "reference", "thresholds", "calibration", "probes", "mistakes", "variants"):
        assert importlib.import_module(getattr(a, role)), role
    entries = a.entries()
    assert entries and {e.kind for e in entries} == {"mistake", "variant"}
    assert set(a.typical) <= {e.name for e in entries}
    assert a.model_answers and all(isinstance(k, assignments.Number) for k in a.model_answers)
    assert a.prerequisites
    for doc in (a.catalogue_doc, a.catalogue_test, a.thresholds_doc):
        assert (paths.ROOT / doc).is_file(), doc
    assert a.exports(paths.ROOT).parent in (paths.ROOT, paths.ROOT / "exports")


def test_module_of_a_missing_role_says_so():
    a = assignments.registry()[0]
    blank = Assignment(name="x", order=99, package="x")
    with pytest.raises(LookupError, match="no probes module"):
        blank.module("probes")
    assert a.module("mistakes").MISTAKES


def test_each_part_of_a_package_imports_on_its_own():
    """Any module of a package can be the first one imported (a calibration run with ``python -m``, a
    fork server loading probes): none may need the checks registry to be built first. One interpreter
    that has imported torch, one fork per module."""
    import subprocess
    import sys
    roles = ("checks", "reference", "thresholds", "calibration", "reexec", "probes", "mistakes", "variants")
    names = [getattr(a, r) for a in assignments.registry() for r in roles if getattr(a, r)]
    code = ("import importlib, os, sys, numpy, torch\n"
            "bad = []\n"
            f"for name in {names!r}:\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        try:\n"
            "            importlib.import_module(name)\n"
            "        except Exception as exc:\n"
            "            print(name, repr(exc))\n"
            "            os._exit(1)\n"
            "        os._exit(0)\n"
            "    if os.waitpid(pid, 0)[1]:\n"
            "        bad.append(name)\n"
            "sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=paths.ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # every assignment of the course declares every part (the worked example re-runs no training cell)
    assert all(getattr(a, r) for a in assignments.registry() if a.name in assignments.names() for r in roles)
