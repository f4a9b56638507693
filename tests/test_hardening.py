"""Hostile submissions: staging without links, code or packages; notebook and output size caps;
sanitized feedback HTML; CSV cells that never become formulas; stale exports after a crash; the grading
process's own memory limit. Unit level, no kernel."""
import base64
import copy
import csv
import io
import os
import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader import utils as nbgrader_utils
from nbgrader.coursedir import CourseDirectory

from tpkit import paths
from tpkit.grading import __main__ as grading_main
from tpkit.grading import collect, csvsafe, export, pipeline, precheck, results
from tpkit.grading.converters import FrenchFeedback, ParallelAutograde, safe_html
from tpkit.grading.export import GradesCsvExport
from tpkit.grading.lms import moodle
from tpkit.grading.lms.moodle.fixtures import minimal_notebook, write_moodle_zip, write_worksheet
from tpkit.grading.options import Options, load_config
from tpkit.grading.results import FAILED, PARTIAL, StudentResult
from tpkit.grading.preprocessors import LimitedExecute, LimitOutputBytes
from tpkit.submissions import solution_submission

ASSIGNMENT = paths.ASSIGNMENT
NB_NAME = f"{ASSIGNMENT}.ipynb"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def expected():
    return precheck.expected_from_notebooks(paths.SOURCE_NOTEBOOK, paths.RELEASE_NOTEBOOK, ASSIGNMENT)


@pytest.fixture(scope="module")
def reference():
    return solution_submission()


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


# ------------------------------------------------------------------------------------------------
# 1. staging

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
    os.symlink(paths.SOURCE_NOTEBOOK, folder / NB_NAME)
    pre = precheck.stage("s", folder, tmp_path / "st", expected)
    assert pre.staged is None and not (tmp_path / "st").exists()
    assert "lien symbolique, non suivi" in pre.failure
    nb, reason = precheck.read_notebook(folder / NB_NAME)
    assert nb is None and "lien symbolique (non suivi)" in reason


def test_a_linked_notebook_next_to_a_real_one(tmp_path, expected, reference):
    folder = tmp_path / "submitted" / "s" / ASSIGNMENT
    folder.mkdir(parents=True)
    os.symlink(paths.SOURCE_NOTEBOOK, folder / NB_NAME)
    nbformat.write(reference, str(folder / "TP_Dupont.ipynb"))
    pre = precheck.stage("s", folder, tmp_path / "st", expected)
    assert pre.failure is None
    assert nbformat.read(str(pre.staged), as_version=4).cells == \
        nbformat.read(str(folder / "TP_Dupont.ipynb"), as_version=4).cells
    kinds = {f.kind: f.message for f in pre.findings}
    assert "TP_Dupont.ipynb" in kinds["renamed"]
    assert f"{NB_NAME} (lien → {paths.SOURCE_NOTEBOOK})" in kinds["dropped"]


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
    assert precheck.MAX_NOTEBOOK_BYTES == 20 * MB
    folder = tmp_path / "submitted" / "s" / ASSIGNMENT
    folder.mkdir(parents=True)
    with open(folder / NB_NAME, "wb") as fh:  # sparse: 21 MB that cost nothing
        fh.truncate(21 * MB)
    pre = precheck.stage("s", folder, tmp_path / "st", expected)
    assert pre.staged is None
    assert pre.failure == (f"fichier {NB_NAME} trop volumineux (21 Mo, limite 20 Mo : sorties trop longues "
                           "ou images ?)")
    assert precheck.format_mo(1.5 * MB) == "1,5 Mo"


# ------------------------------------------------------------------------------------------------
# 2. output size

def _huge_notebook():
    png = base64.b64encode(b"\x89PNG" + b"\0" * (MB // 2)).decode()  # 0.7 MB: under the per-output cap
    test_cell = new_code_cell("verifier('q1', globals())", outputs=[
        new_output("stream", name="stdout", text="x" * (64 * MB)),  # 300 prints of 1 MB, coalesced
        new_output("stream", name="stderr", text="w" * (3 * MB)),
        new_output("error", ename="AssertionError", evalue="é" * (2 * MB), traceback=["t" * MB] * 3),
    ])
    test_cell.metadata.nbgrader = {"grade": True, "solution": False, "locked": True, "points": 1,
                                   "grade_id": "q1_test", "schema_version": 3}
    images = new_code_cell("for i in range(30): display(img)", outputs=[
        new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"}) for _ in range(30)])
    small = new_code_cell("print(1)", outputs=[new_output("stream", name="stdout", text="1\n")])
    later = new_code_cell("0.5", outputs=[
        new_output("stream", name="stdout", text="y" * 10_000),
        new_output("stream", name="stderr", text="attention"),
        new_output("stream", name="stdout", text="z" * 10_000),
        new_output("execute_result", data={"text/plain": "0.5"}, execution_count=4),
    ])
    return new_notebook(cells=[small, test_cell, images, later])


def test_huge_outputs_are_capped_and_grading_is_unchanged():
    nb = _huge_notebook()
    before = [nbgrader_utils.determine_grade(c) for c in nb.cells if c.metadata.get("nbgrader")]
    cap = LimitOutputBytes()
    assert (cap.max_output_bytes, cap.max_notebook_bytes) == (1 * MB, 8 * MB)
    nb, _ = cap.preprocess(nb, {})
    size = len(nbformat.writes(nb).encode())
    assert size < cap.max_notebook_bytes + 2 * MB, size
    small, test_cell, images, later = nb.cells
    assert small.outputs[0].text == "1\n"
    stdout, stderr, error = test_cell.outputs
    assert stdout.text.endswith("\n[sortie tronquée : 64 Mo]\n") and len(stdout.text) < MB + 100
    assert stderr.name == "stderr" and "[sortie tronquée : 3 Mo]" in stderr.text
    assert error.output_type == "error" and error.ename == "AssertionError"
    assert error.traceback[-1] == "[sortie tronquée : 7 Mo]"
    # the budget is spent part way through the images: the first ones kept, then one as a note, the rest
    # summed up in a last note
    assert 3 <= sum("image/png" in o.get("data", {}) for o in images.outputs) <= 8
    assert images.outputs[-1].text.startswith("[sortie tronquée : ") and "sortie(s) de plus" in \
        images.outputs[-1].text
    kinds = [(o.output_type, o.get("name")) for o in later.outputs]
    assert ("stream", "stderr") in kinds and ("execute_result", None) in kinds
    assert [nbgrader_utils.determine_grade(c) for c in nb.cells if c.metadata.get("nbgrader")] == before
    nbformat.validate(nb)
    for cell in nb.cells:
        for out in cell.outputs:
            assert cap.nbytes(out) <= cap.max_output_bytes
    # the feedback caps the autograded notebook again: nothing changes, the first notes stay
    again, _ = LimitOutputBytes().preprocess(copy.deepcopy(nb), {})
    assert again == nb


def test_output_cap_is_wired_after_execution_and_in_the_feedback(tmp_path):
    cfg = load_config(Options())
    autograde = ParallelAutograde(coursedir=CourseDirectory(config=cfg), config=cfg)
    steps = autograde.autograde_preprocessors
    assert steps.index(LimitOutputBytes) == steps.index(LimitedExecute) + 1
    feedback = FrenchFeedback(coursedir=CourseDirectory(config=cfg), config=cfg)
    assert LimitOutputBytes in feedback.preprocessors


# ------------------------------------------------------------------------------------------------
# 3. feedback HTML

def _feedback_html(nb) -> str:
    """The student's notebook through the feedback's own exporter, preprocessors and template (less
    GetGradesFr, which reads the gradebook: the scores are given here)."""
    cfg = load_config(Options())
    fb = FrenchFeedback(coursedir=CourseDirectory(config=cfg), config=cfg)
    exporter = fb.exporter_class(parent=fb, config=fb.config)
    for pp in fb.preprocessors:
        if pp.__name__ != "GetGradesFr":
            exporter.register_preprocessor(pp, enabled=True)
    resources = {"nbgrader": {"notebook": ASSIGNMENT, "score": 1, "max_score": 20, "late_penalty": 0},
                 "tpkit": {"student": "<b>s</b>", "remarks": ["<script>alert('remarque')</script>"]}}
    html, _ = exporter.from_notebook_node(nb, resources=resources)
    return html


def test_feedback_html_runs_nothing_from_the_student():
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()
    nb = new_notebook(cells=[
        new_markdown_cell("# Ma réponse\n\nTexte *important* <script>alert('md')</script>\n"
                          "<img src=x onerror=alert('img')> [clic](javascript:alert('lien')) "
                          "[doc](https://pytorch.org)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n$x^2$"),
        new_code_cell("display(...)", outputs=[
            new_output("display_data", data={"text/html": "<b>gras</b><script>alert('html')</script>"
                                              "<img src=y onerror=alert('out')><a href='JaVaScRiPt:alert(1)'>a</a>"
                                              "<iframe src='//evil.example'></iframe><style>body{}</style>",
                                              "text/plain": "html"}),
            new_output("display_data", data={"application/javascript": "alert('js')", "text/plain": "js"}),
            new_output("display_data", data={"text/markdown": "<svg onload=alert('svg')>**m**"}),
            new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"},
                       metadata={"image/png": {"width": "1 onerror=alert('meta')"},
                                 "filenames": {"image/png": "javascript:alert('fichier')"}}),
        ]),
    ])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"x": "</script><script>alert(1)"}}
    html = _feedback_html(nb)
    body = html.split("<body", 1)[1]
    # nothing runs: no script element, no event handler attribute, no javascript: URL, no frame (what
    # the student wrote stays visible as inert text, e.g. "&lt;img src=x onerror=...&gt;")
    assert "<script" not in body
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", html, re.I)
    assert not re.search(r"(href|src)\s*=\s*[\"']?\s*javascript:", html, re.I)
    assert "<iframe" not in body and "&lt;iframe" in body
    text = unescape(html)  # (the page escapes quotes: the script's source must not be there even as text)
    assert "alert('js')" not in text and "alert('html')" not in text and "alert('md')" not in text
    # the page itself still works: the kit's template (no script at all: formulas are Unicode), plots, tables
    assert "Remarques sur votre rendu" in body and "<li>&lt;script&gt;" in body
    assert "<script" not in html
    assert f'src="data:image/png;base64,{png}"' in body
    assert '<h1 id="Ma-r%C3%A9ponse">' in body and "<em>important</em>" in body and "<td>1</td>" in body
    assert '<a href="https://pytorch.org">doc</a>' in body and "<b>gras</b>" in body


def test_safe_html_keeps_formatting_and_data_images_only():
    assert safe_html('<p>a<br>b</p><img src="data:image/png;base64,AAAA" alt="x">') == \
        '<p>a<br>b</p><img src="data:image/png;base64,AAAA" alt="x">'
    assert "src" not in safe_html('<img src="data:text/html;base64,PHNjcmlwdD4=">')
    assert "href" not in safe_html('<a href="data:text/html,<script>alert(1)</script>">x</a>')
    assert "href" not in safe_html('<a href=" java\tscript:alert(1)">x</a>')
    assert safe_html("<div style='position:fixed' onclick='x()'>t</div>") == "<div>t</div>"


# ------------------------------------------------------------------------------------------------
# 4. CSV formula injection

FORMULA = '=HYPERLINK("x","y")'


@pytest.mark.parametrize("value, escaped", [
    (FORMULA, "'" + FORMULA), ("+33 6", "'+33 6"), ("-1+2", "'-1+2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("'=1", "''=1"), ("Élodie", "Élodie"), ("'t Hooft", "'t Hooft"),
    ("", ""), ("p123", "p123"),
])
def test_escape_cell_round_trip(value, escaped):
    assert csvsafe.escape_cell(value) == escaped
    assert csvsafe.unescape_cell(escaped) == value


def _rows(path: Path) -> list:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_grades_csv_escapes_student_text_not_numbers(tmp_path, monkeypatch):
    results = {
        FORMULA: StudentResult(FORMULA, PARTIAL, ["notebook rendu sous le nom « =1+1.ipynb »"],
                               {"q1": -0.5}, -0.5, 20.0),
        "@moi": StudentResult("@moi", FAILED, ["aucun rendu"], max_score=20.0),
        "-x": StudentResult("-x", scores={"q1": 1.0}, score=20.0, max_score=20.0),
    }
    plugin = GradesCsvExport(to=str(tmp_path / "grades.csv"))
    monkeypatch.setattr(plugin, "_gather", lambda gb: (["q1"], {"q1": 1.0}, results))
    plugin.export(None)
    rows = _rows(tmp_path / "grades.csv")
    assert rows[0] == ["student_id", "q1", "total_20", "status"]
    assert rows[1] == ["'" + FORMULA, "-0.5", "-0.5", "partial: notebook rendu sous le nom « =1+1.ipynb »"]
    assert rows[2] == ["'@moi", "", "", "failed: aucun rendu"]
    assert rows[3] == ["'-x", "1", "20", "ok"]


def test_moodle_roster_escapes_names_and_reads_them_back(tmp_path):
    name = '=HYPERLINK("http:evil","clic")'
    z = write_moodle_zip(tmp_path / "dl.zip", {name: (1234567, minimal_notebook()),
                                               "+Zoé": (1234568, {"sous/@carnet.ipynb": minimal_notebook()})})
    imp = moodle.import_moodle_zip(z, tmp_path / "submitted", ASSIGNMENT, NB_NAME)
    rows = _rows(imp.roster_path)
    by_pid = {r[1]: r for r in rows[1:]}
    assert by_pid["1234567"][2] == "'" + name
    assert by_pid["1234568"][2] == "'+Zoé"
    assert all(not cell.startswith(csvsafe.FORMULA_PREFIXES) for row in rows for cell in row)
    roster = moodle.read_roster(tmp_path / "submitted")
    assert roster["p1234567"].full_name == name and roster["p1234568"].full_name == "+Zoé"


def test_moodle_worksheet_comment_escaped_grade_a_number(tmp_path):
    sheet = write_worksheet(tmp_path / "ws.csv", {"Élodie": 1234567, "Jean": 1234568})
    out = tmp_path / "out.csv"
    moodle.fill_worksheet(sheet, {"1234567": (-2.0, "=cmd|' /C calc'!A0"), "1234568": (15.5, "Bien.")}, out)
    rows = {r[0]: r for r in _rows(out)}
    assert rows["Participant 1234567"][4] == "0.00"  # a number, clamped: never escaped
    assert rows["Participant 1234567"][-1] == "'=cmd|' /C calc'!A0"
    assert rows["Participant 1234568"][4] == "15.50" and rows["Participant 1234568"][-1] == "Bien."


# ------------------------------------------------------------------------------------------------
# 5. stale exports

def _old_exports(exports: Path) -> None:
    exports.mkdir(parents=True)
    (exports / "grades.csv").write_text("student_id,total_20,status\nancien,12,ok\n")
    (exports / "moodle_worksheet.csv").write_text("ancienne feuille\n")
    report = results.RunReport(ASSIGNMENT, ["q1"], {"q1": 1.0}, 20.0,
                                {"ancien": StudentResult("ancien", score=12.0, max_score=20.0)})
    (exports / results.REPORT_NAME).write_text(report.to_json())


def test_a_run_that_dies_leaves_no_current_looking_exports(tmp_path, monkeypatch):
    exports = tmp_path / "exports"
    _old_exports(exports)

    def crash(self, students, failures, staging):
        raise RuntimeError("plantage simulé")

    monkeypatch.setattr(pipeline.Grader, "_run", crash)
    with pytest.raises(RuntimeError):
        pipeline.grade(["s"], Options(root=tmp_path, workers=1))
    for name in ("grades.csv", "moodle_worksheet.csv", results.REPORT_NAME):  # those _old_exports wrote
        assert not (exports / name).exists()
        assert (exports / "precedent" / name).is_file()
    readme = (exports / "precedent" / "LISEZMOI.txt").read_text(encoding="utf-8")
    assert "correction précédente" in readme and "PAS à jour" in readme
    # a second crash keeps the last complete exports
    with pytest.raises(RuntimeError):
        pipeline.grade(["s"], Options(root=tmp_path, workers=1))
    assert "ancien,12" in (exports / "precedent" / "grades.csv").read_text()
    assert results.find_report(exports) == (exports / "precedent" / results.REPORT_NAME, True)


def test_export_only_finds_the_report_set_aside(tmp_path, monkeypatch, capsys):
    exports = tmp_path / "exports"
    _old_exports(exports)
    export.set_aside_previous_exports(exports)
    seen = {}

    def fake_export_all(options, run, worksheet=None, provisional=False):
        seen["students"] = list(run.results)
        return run, ["Notes : exports/grades.csv"]

    monkeypatch.setattr("tpkit.grading.export.export_all", fake_export_all)
    monkeypatch.setattr("tpkit.grading.classreport.write", lambda options, run: [])
    shutil.copy(paths.ROOT / "nbgrader_config.py", tmp_path)  # a course: configuration, release, gradebook
    (tmp_path / "release" / ASSIGNMENT).mkdir(parents=True)
    (tmp_path / "gradebook.db").write_bytes(b"")
    code = grading_main.main(["--export-only", "--no-feedback", "--root", str(tmp_path),
                              "--grader-memory-limit", "0"])
    assert code == 0 and seen["students"] == ["ancien"]
    assert "exports/precedent/grading_report.json" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# 6. memory of the grading process

def test_grader_memory_limit():
    assert grading_main.parse_args([]).grader_memory_limit == grading_main.DEFAULT_GRADER_MEMORY_MB == 8192
    code = ("import resource\n"
            "from tpkit.grading.__main__ import limit_own_memory\n"
            "hard = resource.getrlimit(resource.RLIMIT_DATA)[1]\n"
            "limit_own_memory(256)\n"
            "soft, hard2 = resource.getrlimit(resource.RLIMIT_DATA)\n"
            "assert soft == 256 * 2**20 and hard2 == hard, (soft, hard2)\n"
            "try:\n"
            "    b = bytearray(512 * 2**20)\n"
            "except MemoryError:\n"
            "    print('MemoryError')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=paths.ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "MemoryError"
