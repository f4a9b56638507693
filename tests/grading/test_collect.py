"""tpkit.grading.collect: where the submissions to grade come from. Linked student folders (failed,
not followed) are tested in tests/grading/test_staging.py; the import through the registered LMS in
tests/grading/lms/test_registry.py; here the rest of each source's contract."""
from types import SimpleNamespace

from tpkit.grading import collect

A = "devoir"


def submission(root, student, assignment=A, text="{}"):
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True)
    (folder / f"{assignment}.ipynb").write_text(text)
    return folder


def test_a_course_without_submitted_folder_has_no_student(tmp_path):
    col = collect.from_submitted(tmp_path, A)
    assert (col.students, col.failures, col.remarks, col.notes) == ([], {}, {}, [])


def test_students_of_this_assignment_only_in_name_order(tmp_path):
    for name in ("zoe", "alice", "Bob"):
        submission(tmp_path, name)
    submission(tmp_path, "carole", assignment="autre_devoir")
    (tmp_path / "submitted" / "fichier_egare").write_text("pas un dossier")
    (tmp_path / "submitted" / "vide").mkdir()
    assert collect.from_submitted(tmp_path, A).students == ["Bob", "alice", "zoe"]


def test_examples_are_copied_into_submitted_replacing_those_students_folders(tmp_path):
    examples = tmp_path / "exemples"
    for name in ("parfait", "vide"):
        (examples / name / A).mkdir(parents=True)
        (examples / name / A / f"{A}.ipynb").write_text(name)
    (examples / "autre" / "autre_devoir").mkdir(parents=True)
    root = tmp_path / "cours"
    stale = submission(root, "parfait", text="ancien")
    (stale / "reste.txt").write_text("d'une copie précédente")
    other = submission(root, "alice", text="à garder")
    col = collect.from_examples(root, A, examples)
    assert col.students == ["parfait", "vide"] and col.notes == ["2 exemples copiés de exemples/ dans submitted/"]
    assert (root / "submitted" / "parfait" / A / f"{A}.ipynb").read_text() == "parfait"
    assert not (root / "submitted" / "parfait" / A / "reste.txt").exists()
    assert (other / f"{A}.ipynb").read_text() == "à garder"  # other students untouched
    assert not (root / "submitted" / "autre").exists()


def test_an_lms_import_gives_every_imported_student_remarks_even_none(tmp_path, monkeypatch):
    """This import's word replaces the last one's: a student imported without remark gets [] (which
    clears remarks of an earlier import), a failed participant is failed with the reason."""
    calls = []

    def import_zip(zip_path, submitted, assignment, notebook):
        calls.append((zip_path, submitted, assignment, notebook))
        return SimpleNamespace(student_ids=["p1", "p2"], failures=lambda: {"p3": "aucun notebook"},
                               remarks=lambda: {"p2": ["notebook renommé"]}, notes=lambda: ["3 participants"])

    monkeypatch.setitem(collect.LMS, "faux", SimpleNamespace(import_zip=import_zip))
    col = collect.from_lms_zip(tmp_path, A, tmp_path / "rendus.zip", "faux")
    assert calls == [(tmp_path / "rendus.zip", tmp_path / "submitted", A, f"{A}.ipynb")]
    assert col.students == ["p1", "p2"] and col.failures == {"p3": "aucun notebook"}
    assert col.remarks == {"p1": [], "p2": ["notebook renommé"]} and col.notes == ["3 participants"]
