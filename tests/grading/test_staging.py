"""The file level of the pre-check and its staging folder (tpkit.grading.staging): which notebook is
graded, what else of a hostile submission folder reaches the kernel (nothing but timestamp.txt), links
never followed, oversized or too deeply nested notebooks refused unread. (Cell-level repairs:
test_precheck.py.)"""
import copy
import os
from pathlib import Path

import nbformat
import pytest

from tpkit import paths
from tpkit.grading import collect, precheck, staging, submission_files
from tpkit.grading.expected import expected_from_notebooks
from tpkit.grading.results import PARTIAL, StudentResult
from tpkit.submissions import solution_submission

MAIN = "tp_reseaux_neurones"  # the course's main assignment


@pytest.fixture(scope="module")
def expected():
    return expected_from_notebooks(paths.source_notebook(MAIN), paths.release_notebook(MAIN), MAIN)


@pytest.fixture(scope="module")
def reference():
    return solution_submission(assignment=MAIN)


def _stage(tmp_path, nb_or_text, expected):
    folder = tmp_path / "submitted" / "s" / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    text = nb_or_text if isinstance(nb_or_text, str) else nbformat.writes(nb_or_text)
    (folder / NB_NAME).write_text(text, encoding="utf-8")
    return staging.stage("s", folder, tmp_path / "st", expected)


def test_locate_renamed_or_ambiguous(tmp_path, expected, reference):
    text = nbformat.writes(reference)
    one = tmp_path / "one"
    (one / "sous-dossier").mkdir(parents=True)
    (one / "sous-dossier" / "TP Dupont.ipynb").write_text(text)
    path, findings, failure = staging.locate(one, expected)
    assert path.name == "TP Dupont.ipynb" and failure is None and findings[0].kind == "renamed"
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.ipynb").write_text(text)
    (two / "brouillon.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    path, findings, failure = staging.locate(two, expected)
    assert path.name == "a.ipynb"
    (two / "b.ipynb").write_text(text)
    path, findings, failure = staging.locate(two, expected)
    assert path is None and "plusieurs notebooks" in failure
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "rapport.pdf").write_bytes(b"%PDF")
    assert "rapport.pdf" in staging.locate(empty, expected)[2]


ASSIGNMENT = MAIN


NB_NAME = f"{ASSIGNMENT}.ipynb"


MB = 1024 * 1024


def _submission(root: Path, student: str, nb) -> Path:
    folder = root / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(nb, str(folder / NB_NAME))
    (folder / "timestamp.txt").write_text("2024-11-05 23:59:58")
    return folder


def _tree(root: Path) -> dict:
    """{relative path: 'link' | 'dir' | 'file'} without following links."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out[p.relative_to(root).as_posix()] = "link" if p.is_symlink() else ("dir" if p.is_dir() else "file")
    return out


def test_hostile_submission_stages_the_notebook_only(tmp_path, expected, reference):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "solutions.txt").write_text("réponses de l'enseignant")
    folder = _submission(tmp_path, "pirate", reference)
    (folder / "tpkit" / "checks").mkdir(parents=True)
    (folder / "tpkit" / "__init__.py").write_text("")
    (folder / "tpkit" / "checks" / "__init__.py").write_text("def verifier(*a, **k):\n    pass\n")
    (folder / "aide.py").write_text("import os\n")
    (folder / "digitz.npz").write_bytes(b"not the real data")  # replaced by source/ anyway: silent
    (folder / "brouillons").mkdir()
    nbformat.write(reference, str(folder / "brouillons" / "essai.ipynb"))
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / f"{ASSIGNMENT}-checkpoint.ipynb").write_text("{}")
    os.symlink("/etc/passwd", folder / "passwd")
    os.symlink(secret, folder / "donnees")
    os.symlink(secret / "solutions.txt", folder / "brouillons" / "notes.txt")
    os.mkfifo(folder / "tube")

    staged = tmp_path / "staging" / "pirate" / ASSIGNMENT
    pre = staging.stage("pirate", folder, staged, expected, data_files={"digitz.npz"})

    assert pre.failure is None and pre.staged == staged / NB_NAME
    assert _tree(staged) == {NB_NAME: "file", "timestamp.txt": "file"}
    assert (staged / "timestamp.txt").read_text() == "2024-11-05 23:59:58"
    dropped = [f for f in pre.findings if f.kind == "dropped"]
    assert len(dropped) == 1, pre.messages
    message = dropped[0].message
    assert message.startswith("fichiers ignorés (non corrigés) : ")
    for shown in ("tpkit/checks/__init__.py", "tpkit/__init__.py", "aide.py", "brouillons/essai.ipynb",
                  "passwd (lien → /etc/passwd)", f"donnees (lien → {secret})",
                  f"brouillons/notes.txt (lien → {secret / 'solutions.txt'})", "tube (fichier spécial)"):
        assert shown in message, (shown, message)
    for silent in ("digitz.npz", "checkpoint", "timestamp.txt", NB_NAME + ","):
        assert silent not in message
    # the finding is a remark of the run: it makes the status partial and is shown in the CSV
    result = StudentResult("pirate", PARTIAL, pre.messages)
    assert "tpkit/checks/__init__.py" in result.status_text


def test_dropped_entries_are_listed_up_to_a_limit(tmp_path, expected, reference):
    folder = _submission(tmp_path, "s", reference)
    for k in range(precheck.MAX_LISTED + 5):
        (folder / f"module_{k:02d}.py").write_text("")
    pre = staging.stage("s", folder, tmp_path / "st", expected)
    message = next(f.message for f in pre.findings if f.kind == "dropped")
    assert "module_00.py" in message and "et 5 autre(s)" in message
    assert _tree(tmp_path / "st") == {NB_NAME: "file", "timestamp.txt": "file"}


def test_clean_submission_has_no_dropped_finding(tmp_path, expected, reference):
    folder = _submission(tmp_path, "s", reference)
    pre = staging.stage("s", folder, tmp_path / "st", expected)
    assert pre.findings == [] and pre.failure is None


def test_a_linked_notebook_is_never_read(tmp_path, expected):
    """The notebook itself a link to the instructor's notebook (solutions): not followed, not graded."""
    folder = tmp_path / "submitted" / "s" / ASSIGNMENT
    folder.mkdir(parents=True)
    os.symlink(paths.source_notebook(MAIN), folder / NB_NAME)
    pre = staging.stage("s", folder, tmp_path / "st", expected)
    assert pre.staged is None and not (tmp_path / "st").exists()
    assert "lien symbolique, non suivi" in pre.failure
    nb, reason = submission_files.read_notebook(folder / NB_NAME)
    assert nb is None and "lien symbolique (non suivi)" in reason


def test_a_linked_notebook_next_to_a_real_one(tmp_path, expected, reference):
    folder = tmp_path / "submitted" / "s" / ASSIGNMENT
    folder.mkdir(parents=True)
    os.symlink(paths.source_notebook(MAIN), folder / NB_NAME)
    nbformat.write(reference, str(folder / "TP_Dupont.ipynb"))
    pre = staging.stage("s", folder, tmp_path / "st", expected)
    assert pre.failure is None
    assert nbformat.read(str(pre.staged), as_version=4).cells == \
        nbformat.read(str(folder / "TP_Dupont.ipynb"), as_version=4).cells
    kinds = {f.kind: f.message for f in pre.findings}
    assert "TP_Dupont.ipynb" in kinds["renamed"]
    assert f"{NB_NAME} (lien → {paths.source_notebook(MAIN)})" in kinds["dropped"]


def test_linked_student_folders_are_failed_not_followed(tmp_path, expected, reference):
    elsewhere = tmp_path / "ailleurs"
    _submission(elsewhere, "x", reference)
    _submission(tmp_path, "honnete", reference)
    os.symlink(elsewhere / "submitted" / "x", tmp_path / "submitted" / "lien_etudiant")
    (tmp_path / "submitted" / "lien_devoir").mkdir()
    os.symlink(elsewhere / "submitted" / "x" / ASSIGNMENT, tmp_path / "submitted" / "lien_devoir" / ASSIGNMENT)
    col = collect.from_submitted(tmp_path, ASSIGNMENT)
    assert col.students == ["honnete"]
    assert col.failures == {"lien_etudiant": staging.LINKED_FOLDER, "lien_devoir": staging.LINKED_FOLDER}
    pre = staging.stage("lien_devoir", tmp_path / "submitted" / "lien_devoir" / ASSIGNMENT,
                         tmp_path / "st", expected)
    assert pre.failure == staging.LINKED_FOLDER and not (tmp_path / "st").exists()


def test_notebook_over_the_size_cap_is_failed_unread(tmp_path, expected):
    assert submission_files.MAX_NOTEBOOK_BYTES == 20 * MB
    folder = tmp_path / "submitted" / "s" / ASSIGNMENT
    folder.mkdir(parents=True)
    with open(folder / NB_NAME, "wb") as fh:  # sparse: 21 MB that cost nothing
        fh.truncate(21 * MB)
    pre = staging.stage("s", folder, tmp_path / "st", expected)
    assert pre.staged is None
    assert pre.failure == (f"fichier {NB_NAME} trop volumineux (21 Mo, limite 20 Mo : sorties trop longues "
                           "ou images ?)")
    assert submission_files.format_mo(1.5 * MB) == "1,5 Mo"


def test_deep_json_nesting_is_refused_before_parsing(tmp_path, expected, reference):
    """100,000 nested arrays in a cell's metadata: refused with the reason, no RecursionError."""
    text = nbformat.writes(reference).replace('"metadata": {', '"metadata": {"x": ' + "[" * 100_000 + "]" * 100_000
                                              + ", ", 1)
    pre = _stage(tmp_path, text, expected)
    assert pre.staged is None
    assert pre.failure == (f"notebook {NB_NAME} illisible : imbrication trop profonde (100004 niveaux de listes "
                           f"ou d'objets JSON, limite {submission_files.MAX_JSON_DEPTH})")
    nested = {"data": {"application/json": {"a": [[[["fin"]]]]}}, "output_type": "display_data", "metadata": {}}
    nb = copy.deepcopy(reference)
    nb.cells[2].outputs = [nbformat.from_dict(nested)]
    assert _stage(tmp_path / "ok", nb, expected).failure is None  # a few levels are fine
