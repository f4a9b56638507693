"""What reaches a person is inert (issue #22, item 3): a student's folder name, file names, cell ids and
error messages come back in ids, statuses and reasons; on the terminal, in grades.csv, in Moodle's
worksheet, in the logs and in the class report their control characters show escaped (no terminal
escape acts, no bidi override reorders, no newline forges a line), the class report shows any id as
text (no mathtext, no HTML) and loads nothing."""
import csv
import io
import logging
import re
import shutil

import pytest

from tpkit import paths
from tpkit.grading import classreport, report
from tpkit.grading.export import GradesCsvExport
from tpkit.grading.inert import inert
from tpkit.grading.logs import InertFormatter, student_log, terminal_log
from tpkit.grading.options import Options
from tpkit.grading.submission_files import printable as _printable
from tpkit.grading.results import FAILED, FLAGGED, OK, PARTIAL, RunReport, StudentResult

MAIN = "tp_reseaux_neurones"  # the course's main assignment

#: Hostile student ids (folder names): clipboard write, cursor up + erase line, hidden text, mathtext,
#: HTML, right-to-left override, newline forging a row, zero-width space, an undecodable byte.
CLIPBOARD = "eve\x1b]52;c;cm0gLXJmIH4=\x07"
CURSOR = "mallory\x1b[2A\x1b[2K"
HIDDEN = "trudy\x1b[8mcaché\x1b[0m"
MATH = "$\\boom$"
SCRIPT = "<script>alert(1)</script>"
RTL = "oscar\u202e02/02\u202c"
NEWLINE = "nl\n[9/9] alice 20/20 ok"
ZERO_WIDTH = "al\u200bice"
UNDECODABLE = "byte\udcff"
HOSTILE = [CLIPBOARD, CURSOR, HIDDEN, MATH, SCRIPT, RTL, NEWLINE, ZERO_WIDTH, UNDECODABLE]
REASON = "cellule « q1\x1b[31m\u2067 » dupliquée\r\nfaux: 20/20"

#: What must never reach a person: a C0/C1 control (but \n and \t where a text spans lines), DEL, a
#: bidi embedding, override or isolate, a zero-width or other format character, a lone surrogate.
_LIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
                   "\ufeff\ufff9-\ufffb\ud800-\udfff\u3164]")


def live(text: str, lines: bool = False) -> list:
    found = _LIVE.findall(text)
    return found if lines else found + [c for c in text if c in "\n\t"]


@pytest.mark.parametrize("char", [chr(c) for c in range(0x20)] + ["\x7f"] + [chr(c) for c in range(0x80, 0xa0)])
def test_every_c0_and_c1_control_and_del_shows_escaped(char):
    shown = inert(f"a{char}b")
    assert shown.startswith("a\\") and shown.endswith("b") and shown.isprintable()
    assert shown == "a" + ascii(char)[1:-1] + "b"


@pytest.mark.parametrize("char", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
                                  "\u2069", "\u200e", "\u200f", "\u061c", "\u200b", "\u200c", "\u200d", "\u2060",
                                  "\ufeff", "\u00ad", "\u180e", "\u2028", "\u2029", "\U000e0041", "\u3164",
                                  "\ud83d", "\U0010ffff"])
def test_bidi_zero_width_and_other_invisible_characters_show_escaped(char):
    shown = inert(f"x{char}y")
    assert shown == "x" + ascii(char)[1:-1] + "y"
    assert not live(shown)


def test_terminal_sequences_are_escaped_and_colours_removed():
    assert inert(CLIPBOARD) == "eve\\x1b]52;c;cm0gLXJmIH4=\\x07"
    assert inert(CURSOR) == "mallory\\x1b[2A\\x1b[2K"
    assert inert(HIDDEN) == "trudy\\x1b[8mcaché\\x1b[0m"  # "8": conceal: shown, the id stays distinct
    # in a log, colour codes (SGR, conceal included) are dropped: the text is shown, the rest escaped
    assert inert("\x1b[0;31mAssertionError\x1b[0m: faux", drop_colours=True) == "AssertionError: faux"
    assert inert(HIDDEN + CURSOR, drop_colours=True) == "trudycachémallory\\x1b[2A\\x1b[2K"
    assert inert("\x9b2J") == "\\x9b2J"  # the one-byte C1 CSI too


def test_what_a_person_can_read_is_kept():
    for text in ("Élodie Martin-Dupont", "Zoë O'Brien", "张伟", "محمد", "emoji 🎓", "no\u00a0break", "tab-less"):
        assert inert(text) == text
    assert inert("a\nb\tc", keep="\n\t") == "a\nb\tc" and inert("a\nb") == "a\\nb"
    assert inert(None) == "" and inert(12) == "12"
    assert inert("x" * 50, limit=10) == "x" * 9 + "…"


def test_precheck_names_use_the_same_function():
    assert _printable(CLIPBOARD) == inert(CLIPBOARD) and _printable("a" * 300).endswith("…")


def _hostile_run() -> RunReport:
    results = {}
    for k, sid in enumerate(HOSTILE):
        status = (OK, PARTIAL, FLAGGED, FAILED)[k % 4]
        score = None if status == FAILED else 10.0 + k
        results[sid] = StudentResult(sid, status, [] if status == OK else [REASON, sid], {"q1": score},
                                     score, 20.0, seconds=1.0 + k)
    return RunReport(MAIN, ["q1"], {"q1": 20.0}, 20.0, results, workers=2, seconds=12.0)


def test_terminal_progress_and_summary_are_inert():
    run = _hostile_run()
    out = io.StringIO()
    progress = report.Progress(out=out, names={s: s[::-1] for s in HOSTILE}, total=len(HOSTILE))
    for k, r in enumerate(run.results.values(), 1):
        progress(k, len(HOSTILE), r)
    report.summary(run, names={s: "Nom " + s for s in HOSTILE}, out=out,
                   exports=[f"Notes : exports/{CLIPBOARD}.csv"])
    text = out.getvalue()
    assert not live(text, lines=True)
    lines = text.split("\n")
    # one line per submission, no forged one; each id shown escaped
    assert sum(1 for line in lines if line.startswith("[")) == len(HOSTILE)
    assert "[9/9] alice 20/20 ok" not in [line.strip() for line in lines]
    assert inert(CLIPBOARD) in text and inert(RTL) in text and "nl\\n[9/9]" in text


def test_kit_warnings_on_stderr_are_inert(capsys):
    terminal_log()
    terminal_log()  # idempotent: one handler
    logging.getLogger("tpkit.grading").error("feedback for %s: %r", CLIPBOARD, ValueError(RTL))
    err = capsys.readouterr().err
    assert err.count("feedback for") == 1 and not live(err, lines=True) and inert(CLIPBOARD) in err


def test_student_logs_are_inert(tmp_path):
    options = Options(assignment=MAIN, root=tmp_path)
    with student_log(options, "eve") as logger:
        logger.error("cell output:\n%s\n\tend", CLIPBOARD + RTL + CURSOR)
    text = (tmp_path / "exports" / "logs" / "eve.log").read_text(encoding="utf-8")
    assert not live(text, lines=True) and "\n\tend" in text and inert(CLIPBOARD) in text
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "%s", (HIDDEN,), None)
    assert InertFormatter("%(message)s").format(record) == "trudycaché"


def test_grades_csv_is_inert(tmp_path, monkeypatch):
    run = _hostile_run()
    plugin = GradesCsvExport(to=str(tmp_path / "grades.csv"))
    monkeypatch.setattr(plugin, "_gather", lambda gb: (run.columns, run.points, run.results))
    plugin.export(None)
    raw = (tmp_path / "grades.csv").read_text(encoding="utf-8")
    assert not live(raw, lines=True)
    rows = list(csv.reader(io.StringIO(raw)))
    assert len(rows) == 1 + len(HOSTILE)  # the newline in an id forged no row
    assert [r[0] for r in rows[1:]] == [inert(s) for s in HOSTILE] and len({r[0] for r in rows}) == len(rows)
    assert "faux: 20/20" in rows[2][-1] and "\\r\\n" in rows[2][-1]


def test_moodle_worksheet_comment_is_inert(tmp_path):
    from tpkit.grading.lms import moodle
    from tpkit.grading.lms.moodle.fixtures import write_worksheet
    sheet = write_worksheet(tmp_path / "ws.csv", {"Élodie": 1234567})
    moodle.fill_worksheet(sheet, {"1234567": (12.0, "Remarques : " + REASON + CLIPBOARD)}, tmp_path / "out.csv")
    raw = (tmp_path / "out.csv").read_bytes().decode("utf-8-sig")
    # a comment keeps its line breaks (a quoted field: Moodle shows them), nothing else
    assert not live(raw.replace("\r\n", "\n"), lines=True) and inert(CLIPBOARD) in raw
    assert "q1\\x1b[31m\\u2067 » dupliquée\r\nfaux" in raw


@pytest.fixture
def class_report(tmp_path):
    shutil.copy(paths.ROOT / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    options = Options(assignment=MAIN, root=tmp_path)
    run = _hostile_run()
    lines = classreport.write(options, run)
    return options, run, lines


def test_class_report_shows_any_id_as_text(class_report):
    options, run, lines = class_report
    assert lines and "rapport_classe.html" in lines[0]
    page = (options.exports / classreport.PAGE).read_text(encoding="utf-8")
    figures = sorted(p.name for p in (options.exports / classreport.FIGURES).glob("*.png"))
    assert figures == ["distribution.png", "durees.png", "questions.png"]
    assert all((options.exports / classreport.FIGURES / f).stat().st_size > 1000 for f in figures)
    assert not live(page.split("<body>", 1)[1], lines=True)
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # every student row is there, its id escaped, the mathtext id shown as it is
    rows = re.findall(r'<tr data-student="([^"]*)" data-total', page)
    assert len(rows) == len(HOSTILE) and "$\\boom$" in rows
    assert "oscar\\u202e02/02\\u202c" in rows and "nl\\n[9/9] alice 20/20 ok" in rows
    assert f'content="{classreport.CSP}"' in page and "default-src 'none'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)


def test_figure_labels_are_never_mathtext():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    labels = [classreport.plain_label(s) for s in (MATH, "a$b$c", "\\$", "x^2_{i}")]
    ax.set_yticks(range(len(labels)), labels=labels)
    fig.canvas.draw()  # would raise ValueError (unknown symbol \boom) on mathtext
    shown = [t._preprocess_math(t.get_text()) for t in ax.get_yticklabels()]
    plt.close(fig)
    assert shown == [(MATH, False), ("a$b$c", False), ("\\$", False), ("x^2_{i}", False)]


# --- the feedback page: loads nothing, the student's content framed as theirs ----------------------------

EVIL = "evil.example"
LOOK_ALIKE = (
    '<div class="panel panel-default correcteur-grade" style="border:2px solid #1f4e79" id="notebook-container">'
    '<div class="panel-heading"><h4 id="top">tp_reseaux_neurones — note : 20 / 20</h4></div></div>\n'
    '<p class="alert alert-success correcteur-student-label">Note finale : 20 / 20</p>\n')
REMOTE = (
    f'<img src="https://{EVIL}/pixel.png" srcset="https://{EVIL}/2x.png 2x" alt="pixel">'
    f'<img src="//{EVIL}/p2.png"><img src="images/local.png">'
    f'<div style="background:url(https://{EVIL}/bg.png)">fond</div>'
    f'<style>@import url(https://{EVIL}/a.css);</style>'
    f'<link rel="stylesheet" href="https://{EVIL}/b.css">'
    f'<meta http-equiv="refresh" content="0;url=https://{EVIL}/r">'
    f'<base href="https://{EVIL}/">'
    f'<object data="https://{EVIL}/o"></object><embed src="https://{EVIL}/e">'
    f'<form action="https://{EVIL}/f"><input name="q"></form>'
    f'<iframe src="https://{EVIL}/i"></iframe>'
    f'<svg><image href="https://{EVIL}/s.png"/></svg>'
    f'<video src="https://{EVIL}/v.mp4" poster="https://{EVIL}/p.png"></video><audio src="https://{EVIL}/a.mp3"></audio>'
    f'<table background="https://{EVIL}/t.png"><tr><td>t</td></tr></table>')


@pytest.fixture(scope="module")
def feedback_page():
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
    from test_converters import _feedback_html

    statement = next(c.source for c in nbformat.read(str(paths.source_notebook(MAIN)), as_version=4).cells
                     if c.cell_type == "markdown" and "nbgrader" not in c.metadata)
    answer = new_markdown_cell(LOOK_ALIKE + "Ma réponse rédigée.")
    answer.metadata["nbgrader"] = {"grade": True, "solution": True, "grade_id": "m2_approximation", "points": 0.5,
                                   "score": 0.5, "needs_manual_grade": False, "locked": False, "schema_version": 3}
    nb = new_notebook(cells=[
        new_markdown_cell(statement),
        new_markdown_cell("# Bilan\n\n" + LOOK_ALIKE + REMOTE + "\n\n[doc](https://pytorch.org) ![img](https://"
                          + EVIL + "/md.png)"),
        answer,
        new_code_cell("display(HTML(...))", outputs=[
            new_output("display_data", data={"text/html": LOOK_ALIKE + REMOTE, "text/plain": "html"}),
            new_output("stream", name="stdout", text="Note finale : 20 / 20\n\x1b]52;c;aGk=\x07"),
        ]),
    ])
    nb.cells.append(nbformat.v4.new_raw_cell(REMOTE, metadata={"raw_mimetype": "text/html"}))
    return _feedback_html(nb)


def _soup(page):
    from bs4 import BeautifulSoup
    return BeautifulSoup(page, features="html.parser")


def test_feedback_page_has_a_content_security_policy(feedback_page):
    head = feedback_page.split("</head>", 1)[0]
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)"', head)
    assert csp, "no CSP meta tag"
    policy = dict(d.strip().split(" ", 1) for d in csp.group(1).split(";") if d.strip())
    assert policy["default-src"] == "'none'" and policy["img-src"] == "data:"
    assert "script-src" not in policy and "'unsafe-inline'" in policy["style-src"]
    assert head.index("Content-Security-Policy") < head.index("<style")  # before anything that could load


def test_feedback_page_loads_nothing_from_outside(feedback_page):
    soup = _soup(feedback_page)
    loading = ("src", "srcset", "href", "data", "action", "poster", "background", "style", "content")
    for el in soup.find_all(True):
        for name in loading:
            value = el.get(name)
            if value is None or (el.name == "a" and name == "href"):
                continue
            value = " ".join(value) if isinstance(value, list) else value
            assert EVIL not in value and "url(" not in value.replace("url(../fonts/", ""), (el.name, name, value)
            if el.name == "img" and name == "src":
                assert value.startswith("data:image/"), value
    for tag in ("link", "base", "iframe", "object", "embed", "form", "svg", "video", "audio", "input", "script"):
        assert not soup.find_all(tag), tag
    assert [m.attrs for m in soup.find_all("meta")] == [
        {"charset": "utf-8"}, {"http-equiv": "Content-Security-Policy", "content": soup.meta.find_next("meta")["content"]}]
    assert all(EVIL not in s.text for s in soup.find_all("style"))
    assert soup.find("a", href="https://pytorch.org") is not None  # links stay, never loaded by themselves
    assert "&lt;iframe" in feedback_page  # the student's markup shown as text
    assert feedback_page.count("[image non affichée : pixel — seules les images enregistrées") == 3


def test_a_look_alike_grade_box_is_framed_and_plain(feedback_page):
    soup = _soup(feedback_page)
    grade = soup.select("div.correcteur-grade")
    assert len(grade) == 1 and grade[0].find_parent(class_="correcteur-student") is None
    assert "note : 16 / 20" not in grade[0].get_text()  # (the kit's box: the score given, 1 / 20)
    assert "note : 1 / 20" in " ".join(grade[0].h4.get_text().split())
    frames = soup.select("div.correcteur-student")
    # the look-alike Markdown cell, the answer, the output area, the raw cell: each framed, labelled
    assert len(frames) == 4
    for frame in frames:
        assert frame.find(class_="correcteur-student-label").get_text() == "Contenu de l'étudiant·e"
    copies = soup.find_all(string=re.compile("Note finale : 20 / 20"))  # Markdown, answer, HTML, stdout
    assert len(copies) == 4 and all(c.find_parent(class_="correcteur-student") for c in copies)
    for frame in frames:
        for el in frame.find_all(True):
            if "correcteur-student-label" in el.get("class", []):
                continue
            assert not el.get("style"), el
            assert not set(el.get("class", [])) & {"panel", "panel-default", "panel-heading", "alert", "alert-success",
                                                   "correcteur-grade", "correcteur-student-label"}, el
            assert el.get("id") not in ("top", "notebook-container"), el
    # the statement's own Markdown is not framed (it is the statement's word for word)
    first = soup.select("div.text_cell")[0]
    assert not first.select(".correcteur-student")


def test_feedback_page_student_id_and_remarks_are_inert(tmp_path):
    from nbformat.v4 import new_notebook
    from tpkit.grading.converters import FrenchFeedback
    from tpkit.grading.feedback_exporter import FeedbackExporter
    from nbgrader.coursedir import CourseDirectory
    exporter = FeedbackExporter(config=FrenchFeedback(coursedir=CourseDirectory(root=str(tmp_path))).config)
    resources = {"nbgrader": {"notebook": "tp", "score": 1, "max_score": 20, "late_penalty": 0},
                 "tpkit": {"student": RTL + SCRIPT, "remarks": [REASON]}}
    page, _ = exporter.from_notebook_node(new_notebook(), resources=resources)
    body = page.split("<body", 1)[1]
    assert not live(body, lines=True)
    assert "oscar\\u202e02/02\\u202c&lt;script&gt;" in body and "q1\\x1b[31m\\u2067 » dupliquée\\r\\nfaux" in body


def test_failure_page_is_inert(tmp_path):
    from tpkit.grading.feedback import write_failure_feedback
    shutil.copy(paths.ROOT / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    out = write_failure_feedback(Options(assignment=MAIN, root=tmp_path), "eve", f"fichier « {CLIPBOARD}{SCRIPT} » illisible")
    page = out.read_text(encoding="utf-8")
    assert "Content-Security-Policy" in page and not live(page.split("<body", 1)[1], lines=True)
    assert "<script>" not in page and inert(CLIPBOARD) in page


# --- one small real run: a hostile folder name, graded by the command ---------------------------------

@pytest.mark.slow
def test_a_hostile_folder_name_reaches_nobody_live(session_dir):
    """A blank notebook handed in under a folder name with a clipboard escape, a right-to-left override,
    mathtext and HTML: graded; the terminal, grades.csv, the logs and the class report show the id escaped;
    the class report and the feedback page are written. (The class, shared with test_checksums.py, holds
    one more student: tests/grading/small_class.py.)"""
    import small_class
    run = small_class.graded(session_dir)
    root, student = run["root"], small_class.BLANK
    assert run["returncode"] == 0, run["stderr"]
    shown = inert(student)
    assert not live(run["stdout"] + run["stderr"], lines=True) and shown in run["stdout"]
    grades = (root / "exports" / "grades.csv").read_text(encoding="utf-8")
    assert not live(grades, lines=True) and shown in [row[0] for row in list(csv.reader(io.StringIO(grades)))[1:]]
    logs = list((root / "exports" / "logs").glob("*.log"))
    assert len(logs) == 2
    for log in logs:
        assert not live(log.read_text(encoding="utf-8"), lines=True), log.name
    page = (root / "exports" / classreport.PAGE).read_text(encoding="utf-8")
    assert f'data-student="{classreport.text(student)}"' in page and "$\\boom$&lt;b&gt;x" in page
    assert len(list((root / "exports" / classreport.FIGURES).glob("*.png"))) == 3
    feedback = root / "feedback" / student / MAIN / f"{MAIN}.html"
    assert "Content-Security-Policy" in feedback.read_text(encoding="utf-8")
