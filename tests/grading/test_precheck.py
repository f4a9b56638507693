"""Pre-check of a submission's cells (tpkit.grading.precheck): repairs against the gradebook, caps on what
a notebook makes the grader do. (Which notebook, what of the folder is staged: test_staging.py; reading the
folder and the notebook itself: test_submission_files.py.)"""
import copy
import json

import nbformat
import pytest

from tpkit import paths
from tpkit.grading import precheck, staging, submission_files
from tpkit.grading.expected import expected_from_notebooks
from tpkit.submissions import blank_submission, solution_submission
from tpkit.vocabulary import grade_id
from tpkit.vocabulary import BEGIN_HIDDEN, END_HIDDEN

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


def test_hidden_test_markers_typed_outside_a_test_cell_are_neutralised(expected, reference):
    """A student's answer holding the hidden-test markers: nbgrader's feedback would stop on them, and they
    must never pass for the instructor's hidden tests; a test cell keeps its own."""
    nb = copy.deepcopy(reference)
    answer = _cell(nb, "r2_pred")
    answer.source += f"\n# {BEGIN_HIDDEN}\nprint('x')\n# {END_HIDDEN}\n"
    findings = precheck.repair_cells(nb, expected)
    assert [f.kind for f in findings] == ["dropped"] and "r2_pred" in findings[0].message
    assert BEGIN_HIDDEN not in answer.source and END_HIDDEN not in answer.source
    assert answer.source.count("(marqueur retiré)") == 2 and "print('x')" in answer.source
    prose = copy.deepcopy(reference)
    _cell(prose, "r2_pred").source += "\n# no marker here: HIDDEN TESTS written as prose\n"
    assert precheck.repair_cells(prose, expected) == []


def test_edited_test_cell_is_reported(expected, reference):
    nb = copy.deepcopy(reference)
    _cell(nb, "q1_onehot").source = "print('tout va bien')"
    findings = precheck.repair_cells(nb, expected)
    assert [f.kind for f in findings] == ["edited"]
    assert "q1_onehot" in findings[0].message


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


ASSIGNMENT = MAIN
NB_NAME = f"{ASSIGNMENT}.ipynb"


def _stage(tmp_path, nb_or_text, expected):
    folder = tmp_path / "submitted" / "s" / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    text = nb_or_text if isinstance(nb_or_text, str) else nbformat.writes(nb_or_text)
    (folder / NB_NAME).write_text(text, encoding="utf-8")
    return staging.stage("s", folder, tmp_path / "st", expected)


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
