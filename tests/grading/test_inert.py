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
from tpkit.grading.precheck import _printable
from tpkit.grading.results import FAILED, FLAGGED, OK, PARTIAL, RunReport, StudentResult

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
    assert inert(HIDDEN) == "trudycaché"  # colour codes (SGR, "8": conceal included) removed: text shown
    assert inert("\x1b[0;31mAssertionError\x1b[0m: faux") == "AssertionError: faux"
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
    return RunReport(paths.ASSIGNMENT, ["q1"], {"q1": 20.0}, 20.0, results, workers=2, seconds=12.0)


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
    options = Options(root=tmp_path)
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
    assert [r[0] for r in rows[1:]] == [inert(s) for s in HOSTILE]
    assert "faux: 20/20" in rows[2][-1] and "\\r\\n" in rows[2][-1]


def test_moodle_worksheet_comment_is_inert(tmp_path):
    from tpkit.grading.lms import moodle
    from tpkit.grading.lms.moodle.fixtures import write_worksheet
    sheet = write_worksheet(tmp_path / "ws.csv", {"Élodie": 1234567})
    moodle.fill_worksheet(sheet, {"1234567": (12.0, "Remarques : " + REASON + CLIPBOARD)}, tmp_path / "out.csv")
    raw = (tmp_path / "out.csv").read_bytes().decode("utf-8-sig")
    assert not live(raw, lines=True) and inert(CLIPBOARD) in raw


@pytest.fixture
def class_report(tmp_path):
    shutil.copy(paths.ROOT / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    options = Options(root=tmp_path)
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
