"""The LMS registry (tpkit.grading.lms.LMS): the grading command, the collection and the exports reach an
LMS only through it, so a fake LMS registered here is the one they call; Moodle's entry names its files
and loads nothing before a hook is called."""
import shutil
import subprocess
import sys
import warnings
import zipfile

import pytest
from nbgrader.api import Gradebook

from tpkit import paths
from tpkit.grading import __main__ as cli
from tpkit.grading import collect, export, lms
from tpkit.grading.lms.moodle import exports as moodle_exports
from tpkit.grading.options import Options

MAIN = "tp_reseaux_neurones"  # the course's main assignment

A = MAIN


class FakeImport:
    student_ids = ["f1"]

    def failures(self):
        return {"f2": "pas de notebook"}

    def remarks(self):
        return {"f1": ["renommé"]}

    def notes(self):
        return ["2 participant(s) importé(s)"]


@pytest.fixture
def fake(monkeypatch):
    """A fake LMS in place of Moodle (the LMS of --moodle-zip and --moodle-worksheet): its calls recorded."""
    calls = []

    def hook(name, value):
        def call(*args):
            calls.append((name, args))
            return value
        return call
    entry = lms.Lms(import_zip=hook("import_zip", FakeImport()), participants=hook("participants", {"f1"}),
                    check_worksheet=hook("check_worksheet", None),
                    export_worksheet=hook("export_worksheet", ["Feuille factice"]),
                    feedback_zip=hook("feedback_zip", ["Retours factices"]),
                    full_names=hook("full_names", {"ancien": "Élève Factice"}), exports=("factice.csv",))
    monkeypatch.setitem(lms.LMS, cli.OPTIONS_LMS, entry)
    return calls


def course(root, gradebook=False):
    """A course with a release (and a gradebook of one submission, no grade cell)."""
    root.mkdir(exist_ok=True)
    shutil.copy(paths.ROOT / "nbgrader_config.py", root)
    (root / "release" / A).mkdir(parents=True)
    if not gradebook:
        return root
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        warnings.simplefilter("ignore")  # sqlalchemy's, on nbgrader's own adds
        gb.add_assignment(A)
        gb.add_notebook(A, A)
        gb.add_student("ancien")
        gb.add_submission(A, "ancien")
    return root


def test_arguments_are_checked_by_the_registered_lms(tmp_path, fake):
    root = course(tmp_path / "cours")
    sheet, z = tmp_path / "feuille.csv", tmp_path / "travaux.zip"
    sheet.write_text("n'importe quoi\n", encoding="utf-8")
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("x", "")
    args = cli.parse_args(["--root", str(root), "--moodle-zip", str(z), "--moodle-worksheet", str(sheet),
                           "--students", "f1"])
    cli.check_arguments(args)
    assert fake == [("check_worksheet", (sheet,)), ("participants", (z,))]
    with pytest.raises(cli.UsageError, match="étudiant\\(s\\) inconnu\\(s\\) : f3"):
        cli.check_arguments(cli.parse_args(["--root", str(root), "--moodle-zip", str(z), "--students", "f3"]))


def test_collection_imports_through_the_registered_lms(tmp_path, fake):
    col = collect.from_lms_zip(tmp_path, A, tmp_path / "travaux.zip", cli.OPTIONS_LMS)
    assert fake == [("import_zip", (tmp_path / "travaux.zip", tmp_path / "submitted", A, f"{A}.ipynb"))]
    assert (col.students, col.failures, col.remarks, col.notes) == (
        ["f1"], {"f2": "pas de notebook"}, {"f1": ["renommé"]}, ["2 participant(s) importé(s)"])


def test_export_only_reaches_the_registered_lms(tmp_path, fake, monkeypatch, capsys):
    """--export-only --moodle-worksheet: the worksheet checked and filled, the feedback zip and the full
    names, each by the registered LMS (feedback pages and class report not rewritten here)."""
    root = course(tmp_path / "cours", gradebook=True)
    sheet = tmp_path / "feuille.csv"
    sheet.write_text("Identifiant,Note\n", encoding="utf-8")
    monkeypatch.setattr("tpkit.grading.converters.regenerate_feedback", lambda options, run, keep: None)
    monkeypatch.setattr("tpkit.grading.classreport.write", lambda options, run: [])
    assert cli.main(["--export-only", "--root", str(root), "--moodle-worksheet", str(sheet),
                     "--grader-memory-limit", "0"]) == 0
    assert [name for name, _ in fake] == ["check_worksheet", "export_worksheet", "feedback_zip", "full_names"]
    options, gb, run, students, worksheet, provisional = fake[1][1]
    assert options.root == root and list(run.results) == ["ancien"] and worksheet == sheet and not provisional
    out = capsys.readouterr().out
    assert "Feuille factice" in out and "Retours factices" in out and "Élève Factice" in out
    assert (root / "exports" / "grades.csv").is_file()


def test_feedback_zips_and_full_names_of_every_lms(monkeypatch, fake, tmp_path):
    unused = lambda *args: None  # noqa: E731
    monkeypatch.setitem(lms.LMS, "autre", lms.Lms(import_zip=unused, participants=unused, check_worksheet=unused,
                                                    export_worksheet=unused, feedback_zip=lambda o, r: ["autre"],
                                                    full_names=lambda d: {"a1": "Autre"}, exports=()))
    assert lms.feedback_zips(Options(assignment=MAIN, root=tmp_path), None) == ["Retours factices", "autre"]
    assert lms.full_names(tmp_path) == {"ancien": "Élève Factice", "a1": "Autre"}


def test_moodle_entry():
    moodle = lms.LMS["moodle"]
    assert moodle.exports == (moodle_exports.WORKSHEET_OUT, moodle_exports.FEEDBACK_ZIP)
    assert set(moodle.exports) < set(export.EXPORT_NAMES)
    assert moodle.export_worksheet.__name__ == "export_worksheet" and moodle.participants.__name__ == "zip_participants"


def test_the_registry_loads_no_lms():
    """Importing the registry, the collection or the command loads no LMS module (start-up time)."""
    code = ("import sys\n"
            "import tpkit.grading.__main__, tpkit.grading.collect, tpkit.grading.lms\n"
            "print([m for m in sys.modules if m.startswith('tpkit.grading.lms.')])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr
