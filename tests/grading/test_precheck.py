"""Pre-check of a submission (tpkit.grading.precheck): cell repairs against the gradebook, file-level
reasons, staging without links, code or packages (reading the folder and the notebook itself:
test_submission_files.py)."""
import copy
import json
import os
from pathlib import Path

import nbformat
import pytest

from tpkit import paths
from tpkit.grading import collect, precheck, submission_files
from tpkit.grading.expected import expected_from_notebooks
from tpkit.grading.results import PARTIAL, StudentResult
from tpkit.submissions import blank_submission, grade_id, solution_submission

MAIN = "tp_reseaux_neurones"  # the course's main assignment


@pytest.fixture(scope="module")
def expected():
    return expected_from_notebooks(paths.source_notebook(MAIN), paths.release_notebook(MAIN), MAIN)


@pytest.fixture(scope="module")
def reference():
    return solution_submission(assignment=MAIN)


def _ids(nb):
    return [grade_id(c) for c in nb.cells if grade_id(c)]


def _cell(nb, gid):
    return next(c for c in nb.cells if grade_id(c) == gid)


def test_clean_submissions_have_no_findings(expected, reference):
    assert precheck.repair_cells(copy.deepcopy(reference), expected) == []
    assert precheck.repair_cells(blank_submission(assignment=MAIN), expected) == []


def test_duplicated_answer_last_copy_graded(expected, reference):
    nb = copy.deepcopy(reference)
    k = next(i for i, c in enumerate(nb.cells) if grade_id(c) == "r2_pred")
    first = copy.deepcopy(nb.cells[k])
    first.source = "def pred(X, W, B):\n    return None  # brouillon"
    nb.cells.insert(k, first)
    findings = precheck.repair_cells(nb, expected)
    assert [f.kind for f in findings] == ["duplicated"]
    assert "r2_pred" in findings[0].message and "dernière" in findings[0].message
    assert _ids(nb).count("r2_pred") == 1
    assert "nbgrader" not in nb.cells[k].metadata  # the draft became an ordinary cell, still executed
    assert "return th.softmax" in _cell(nb, "r2_pred").source
    assert len({c.get("id") for c in nb.cells}) == len(nb.cells)


def test_relabelled_test_cell_gets_its_id_back(expected, reference):
    nb = copy.deepcopy(reference)
    _cell(nb, "q2_cout").metadata.nbgrader["grade_id"] = "mon_test"
    findings = precheck.repair_cells(nb, expected)
    assert [f.kind for f in findings] == ["relabelled"]
    assert _ids(nb) == _ids(reference)


def test_unknown_graded_cell_becomes_ordinary(expected, reference):
    nb = copy.deepcopy(reference)
    extra = copy.deepcopy(_cell(nb, "r1_dimensions"))
    extra.metadata.nbgrader["grade_id"] = "inconnue"
    nb.cells.append(extra)
    findings = precheck.repair_cells(nb, expected)
    assert [f.kind for f in findings] == ["unknown_cell"]
    assert "nbgrader" not in nb.cells[-1].metadata


def test_changed_metadata_is_restored(expected, reference):
    nb = copy.deepcopy(reference)
    md = _cell(nb, "q2_pred").metadata.nbgrader
    md["grade"], md["points"] = False, 10
    _cell(nb, "m2_approximation").metadata.nbgrader["points"] = 5
    findings = precheck.repair_cells(nb, expected)
    assert {f.grade_id for f in findings} == {"q2_pred", "m2_approximation"}
    assert all(f.kind == "metadata" for f in findings)
    assert md["grade"] is True and md["points"] == 1.5
    assert _cell(nb, "m2_approximation").metadata.nbgrader["points"] == 0.5


def test_deleted_cells(expected, reference):
    nb = copy.deepcopy(reference)
    nb.cells = [c for c in nb.cells if grade_id(c) not in ("q2_cout", "r2_cout", "m3_convergence")]
    findings = precheck.repair_cells(nb, expected)
    kinds = {f.grade_id: f.message for f in findings}
    assert set(kinds) == {"q2_cout", "r2_cout", "m3_convergence"}
    assert "rétablie" in kinds["q2_cout"] and "rétablie" not in kinds["r2_cout"]
    ids = _ids(nb)
    # re-inserted at their place: after the preceding cell that is still there
    assert ids.index("q2_cout") == ids.index("r2_lignes") + 2  # r2_lignes, m2_approximation, q2_cout
    assert ids.index("m3_convergence") == ids.index("q3_courbe") + 1


def test_edited_test_cell_is_reported(expected, reference):
    nb = copy.deepcopy(reference)
    _cell(nb, "q1_onehot").source = "print('tout va bien')"
    findings = precheck.repair_cells(nb, expected)
    assert [f.kind for f in findings] == ["edited"]
    assert "q1_onehot" in findings[0].message


def test_locate_renamed_or_ambiguous(tmp_path, expected, reference):
    text = nbformat.writes(reference)
    one = tmp_path / "one"
    (one / "sous-dossier").mkdir(parents=True)
    (one / "sous-dossier" / "TP Dupont.ipynb").write_text(text)
    path, findings, failure = precheck.locate(one, expected)
    assert path.name == "TP Dupont.ipynb" and failure is None and findings[0].kind == "renamed"
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.ipynb").write_text(text)
    (two / "brouillon.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    path, findings, failure = precheck.locate(two, expected)
    assert path.name == "a.ipynb"
    (two / "b.ipynb").write_text(text)
    path, findings, failure = precheck.locate(two, expected)
    assert path is None and "plusieurs notebooks" in failure
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "rapport.pdf").write_bytes(b"%PDF")
    assert "rapport.pdf" in precheck.locate(empty, expected)[2]


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

    staging = tmp_path / "staging" / "pirate" / ASSIGNMENT
    pre = precheck.stage("pirate", folder, staging, expected, data_files={"digitz.npz"})

    assert pre.failure is None and pre.staged == staging / NB_NAME
    assert _tree(staging) == {NB_NAME: "file", "timestamp.txt": "file"}
    assert (staging / "timestamp.txt").read_text() == "2024-11-05 23:59:58"
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
    pre = precheck.stage("s", folder, tmp_path / "st", expected)
    message = next(f.message for f in pre.findings if f.kind == "dropped")
    assert "module_00.py" in message and "et 5 autre(s)" in message
    assert _tree(tmp_path / "st") == {NB_NAME: "file", "timestamp.txt": "file"}


def test_clean_submission_has_no_dropped_finding(tmp_path, expected, reference):
    folder = _submission(tmp_path, "s", reference)
    pre = precheck.stage("s", folder, tmp_path / "st", expected)
    assert pre.findings == [] and pre.failure is None


def test_a_linked_notebook_is_never_read(tmp_path, expected):
    """The notebook itself a link to the instructor's notebook (solutions): not followed, not graded."""
    folder = tmp_path / "submitted" / "s" / ASSIGNMENT
    folder.mkdir(parents=True)
    os.symlink(paths.source_notebook(MAIN), folder / NB_NAME)
    pre = precheck.stage("s", folder, tmp_path / "st", expected)
    assert pre.staged is None and not (tmp_path / "st").exists()
    assert "lien symbolique, non suivi" in pre.failure
    nb, reason = submission_files.read_notebook(folder / NB_NAME)
    assert nb is None and "lien symbolique (non suivi)" in reason


def test_a_linked_notebook_next_to_a_real_one(tmp_path, expected, reference):
    folder = tmp_path / "submitted" / "s" / ASSIGNMENT
    folder.mkdir(parents=True)
    os.symlink(paths.source_notebook(MAIN), folder / NB_NAME)
    nbformat.write(reference, str(folder / "TP_Dupont.ipynb"))
    pre = precheck.stage("s", folder, tmp_path / "st", expected)
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
    assert col.failures == {"lien_etudiant": precheck.LINKED_FOLDER, "lien_devoir": precheck.LINKED_FOLDER}
    pre = precheck.stage("lien_devoir", tmp_path / "submitted" / "lien_devoir" / ASSIGNMENT,
                         tmp_path / "st", expected)
    assert pre.failure == precheck.LINKED_FOLDER and not (tmp_path / "st").exists()


def test_notebook_over_the_size_cap_is_failed_unread(tmp_path, expected):
    assert submission_files.MAX_NOTEBOOK_BYTES == 20 * MB
    folder = tmp_path / "submitted" / "s" / ASSIGNMENT
    folder.mkdir(parents=True)
    with open(folder / NB_NAME, "wb") as fh:  # sparse: 21 MB that cost nothing
        fh.truncate(21 * MB)
    pre = precheck.stage("s", folder, tmp_path / "st", expected)
    assert pre.staged is None
    assert pre.failure == (f"fichier {NB_NAME} trop volumineux (21 Mo, limite 20 Mo : sorties trop longues "
                           "ou images ?)")
    assert submission_files.format_mo(1.5 * MB) == "1,5 Mo"


# ------------------------------------------------------------------ caps on what a notebook makes us do (issue 22)
def _fake_graded_cells(nb, count):
    """`count` graded cells the assignment does not have, after the first cell (what a hostile
    notebook hands in to make the pre-check and the kernel work)."""
    for i in range(count):
        cell = nbformat.v4.new_code_cell(f"x = {i}")
        cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": f"faux_{i}",
                                     "points": 20, "schema_version": 3}
        nb.cells.insert(1, cell)
    return nb


def _stage(tmp_path, nb_or_text, expected):
    folder = tmp_path / "submitted" / "s" / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    text = nb_or_text if isinstance(nb_or_text, str) else nbformat.writes(nb_or_text)
    (folder / NB_NAME).write_text(text, encoding="utf-8")
    return precheck.stage("s", folder, tmp_path / "st", expected)


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


def test_thousands_of_fake_graded_cells_are_repaired_in_linear_time_and_dropped(tmp_path, expected, reference):
    """5,000 fake graded cells (48 s of pre-check when it was quadratic): one finding for all the unknown
    cells, the extra cells beyond the cap dropped, every cell of the assignment kept and graded."""
    import time
    for count in (5_000,):
        nb = _fake_graded_cells(copy.deepcopy(reference), count)
        cpu = time.process_time()
        pre = _stage(tmp_path / str(count), nb, expected)
        print(f"{count} fausses cellules notées : pré-contrôle en {time.process_time() - cpu:.2f} s de CPU")
        staged = nbformat.read(str(pre.staged), as_version=4)
        assert len(staged.cells) == precheck.MAX_CELLS
        assert _ids(staged) == _ids(reference)
        kinds = [f.kind for f in pre.findings]
        assert kinds.count("unknown_cell") == precheck.MAX_FOREIGN_FINDINGS + 1
        assert f"… et {count - precheck.MAX_FOREIGN_FINDINGS} autre(s) remarque(s)" in pre.findings[-2].message
        dropped = len(reference.cells) + count - precheck.MAX_CELLS
        assert pre.findings[-1].message == (f"{dropped} cellule(s) au-delà de la limite de {precheck.MAX_CELLS} "
                                            "cellules retirée(s) (non exécutées)")
    content = json.loads(nbformat.writes(reference))
    content["cells"] += [{"cell_type": "raw", "source": "", "metadata": {}}] * submission_files.MAX_CELLS_READ
    pre = _stage(tmp_path / "trop", json.dumps(content), expected)  # never parsed by nbformat
    assert pre.failure == (f"notebook {NB_NAME} illisible : {len(content['cells'])} cellules "
                           f"(limite {submission_files.MAX_CELLS_READ})")


def test_duplicated_cell_ids_get_unique_ones_in_linear_time():
    """Copied cells share an nbformat id; ids already taken by the suffixes the repair would use make it
    search further, never twice over the same ones."""
    nb = nbformat.v4.new_notebook()
    nb.nbformat_minor = 5

    def cell(cid):
        return nbformat.NotebookNode(cell_type="raw", id=cid, source="", metadata={})
    nb.cells = [cell(f"a-{k}") for k in range(3_000, 6_000)] + [cell("a") for _ in range(3_000)]
    precheck._fix_cell_ids(nb)
    ids = [c.id for c in nb.cells]
    assert len(set(ids)) == len(ids) and ids[:3_000] == [f"a-{k}" for k in range(3_000, 6_000)]


def test_long_markdown_is_cut_with_a_visible_note(tmp_path, expected, reference):
    """108 kB of `\\begin{x}` (+44 s of feedback rendering, quadratic in mistune's math patterns): cut to
    the cap, ending with the note; the rendering of what is left is printed (not asserted)."""
    import time

    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    nb = copy.deepcopy(reference)
    bomb = "\\begin{x}" * 12_000
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(bomb))
    nb.cells += [nbformat.v4.new_markdown_cell("é" * 9_000) for _ in range(30)]
    pre = _stage(tmp_path, nb, expected)
    staged = nbformat.read(str(pre.staged), as_version=4)
    cut = staged.cells[1].source
    assert cut == bomb[:precheck.MAX_MARKDOWN_CHARS] + "\n\n" + precheck.TRUNCATED
    markdown = [c.source for c in staged.cells if c.cell_type == "markdown"]
    assert sum(map(len, markdown)) <= precheck.MAX_MARKDOWN_TOTAL + len(markdown) * (len(precheck.TRUNCATED) + 2)
    assert staged.cells[-1].source == "\n\n" + precheck.TRUNCATED  # the total ran out
    assert [c.source for c in staged.cells[2:40] if c.cell_type == "markdown"] == \
        [c.source for c in reference.cells[1:39] if c.cell_type == "markdown"]  # the release's text is kept
    finding = next(f for f in pre.findings if f.kind == "truncated")
    assert finding.message.startswith(f"texte Markdown trop long tronqué (limite {precheck.MAX_MARKDOWN_CHARS} "
                                      "caractères par cellule, 200000 en tout) : cellule(s) n°2 (108000 caractères)")
    cpu = time.process_time()
    markdown2html_mistune(cut)
    print(f"Markdown tronqué à {len(cut)} caractères : rendu en {time.process_time() - cpu:.2f} s de CPU")
