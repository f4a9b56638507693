"""The instructor's round trip through the formgrader, in headless Chromium (issue #25, its first test).

A small class (two bundled examples handed in through a Moodle zip, with the Moodle worksheet) is graded
with the kit's command; JupyterLab is started in the course folder, as the README tells, and stays open
the whole time, as it would on the instructor's screen. In the formgrader, the instructor first clicks
the Autograde button (it must refuse, in French, naming the kit's command, and grade nothing), then
grades the partly done student's written answer by typing its points and a comment in the page; then
`--export-only`, a regrade of that student (`--students X --force`) and of the class (`--force`). After
every step the feedback page, its copy in the Moodle feedback zip, grades.csv and the Moodle worksheet
say the same total for that student, and the same final or provisional; the formgrader still shows the
answer graded by hand after the regrades. The numbers of each step are printed (`-s`).
"""
import json
import re
import time
import zipfile
from pathlib import Path

import headless
import pytest
from conftest import generated_course
from test_pipeline import A, CELL_TIMEOUT, agree, class_numbers, gradebook, re_text, read_csv, run_grading, scores

from tpkit import examples
from tpkit.grading.lms.moodle import fixtures as moodle_fixtures

MAIN = "tp_reseaux_neurones"  # the course's main assignment

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(headless.CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")]

TOKEN = "tpkit-aller-retour"
#: the class: the partly done example (one written answer to grade by hand: Q2.4) and the blank one
CLASS = {"Jean-Noël D'Arcy": (1234568, "partiel"), "Zoë van der Berg": (1234569, "vierge")}
STUDENT, PARTICIPANT, NAME_IN_FORMGRADER = "p1234568", "1234568", "D'Arcy, Jean-Noël"
ANSWER = "m2_approximation"  # Q2.4, out of 0.5
POINTS = "0.25"
COMMENT = "Juste pour W petit, mais la comparaison avec Y manque."
#: the summary row of the written answer in the feedback page: its points, or « — » while it waits
_ROW = re.compile(r"Q2\.4 approximation\s+(\S+)\s+0\.5")


def numbers(root: Path) -> dict:
    """The student's numbers in every export (:func:`test_pipeline.class_numbers`), with the written
    answer's points as the feedback page and the zip show them."""
    n = class_numbers(root, STUDENT, PARTICIPANT)
    page = re_text((root / "feedback" / STUDENT / A / f"{A}.html").read_text(encoding="utf-8"))
    with zipfile.ZipFile(root / "exports" / "retours_moodle.zip") as zf:
        zipped = re_text(next(zf.read(x).decode("utf-8") for x in zf.namelist() if f"_{PARTICIPANT}_" in x))
    n.update(page_answer=_ROW.search(page).group(1), zip_answer=_ROW.search(zipped).group(1),
             csv_answer=read_csv(root)[STUDENT][ANSWER], page_comment=COMMENT in page, zip_comment=COMMENT in zipped)
    return n


def line(step: str, n: dict) -> str:
    final = "provisoire" if n["page_provisional"] else "définitive"
    return (f"{step:<22} gradebook {n['gradebook']:>5}  csv {n['csv']:>5} (Q2.4 « {n['csv_answer']} »)  "
            f"page {n['page']:>5} (Q2.4 {n['page_answer']}, {final})  zip {n['zip']:>5} (Q2.4 {n['zip_answer']}, "
            f"{'provisoire' if n['zip_provisional'] else 'définitive'})  feuille « {n['worksheet']} » "
            f"« {n['comment'][:40]} »")


def assert_ok(proc, step: str) -> None:
    assert proc.returncode == 0, (step, proc.stdout[-3000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stdout + proc.stderr, step


def formgrader_status(page, url: str) -> str:
    """The student's status in the formgrader's Manage Submissions page (« needs manual grading », « graded »)."""
    page.goto(f"{url}/formgrader/manage_submissions/{A}")
    row = f"[...document.querySelectorAll('#main-table tr')].find(r => r.innerText.includes('{STUDENT}'))"
    page.wait(f"{row} && {row}.querySelector('.status .label')", timeout=60)
    return page.eval(f"{row}.querySelector('.status .label').innerText")


def click_autograde(page, url: str) -> str:
    """Click the student's Autograde button (Manage Submissions); the text of the dialog that answers."""
    formgrader_status(page, url)
    row = f"[...document.querySelectorAll('#main-table tr')].find(r => r.innerText.includes('{STUDENT}'))"
    page.eval(f"{row}.setAttribute('data-test', 'student')")
    page.click_on("tr[data-test=student] .autograde a")
    page.wait("document.querySelector('#success-modal, #error-modal')", timeout=120)
    assert not page.eval("!!document.querySelector('#success-modal')"), "the Autograde button graded"
    return page.eval("document.querySelector('#error-modal').innerText")


def open_submission(page, url: str) -> None:
    """Manual Grading → the assignment → its notebook → Show All Names → the student, by clicks."""
    page.goto(f"{url}/formgrader/gradebook")
    page.click_on(f"a[href$='/formgrader/gradebook/{A}']")
    page.wait(f"location.pathname.endsWith('/gradebook/{A}')")
    page.click_on(f"a[href$='/formgrader/gradebook/{A}/{A}']")
    page.wait(f"location.pathname.endsWith('/gradebook/{A}/{A}') && document.querySelectorAll('a.name-hidden').length")
    page.click_on("#toggle_names")
    shown = f"[...document.querySelectorAll('a.name-shown')].find(a => a.innerText === {json.dumps(NAME_IN_FORMGRADER)})"
    page.wait(f"{shown} && {shown}.getClientRects().length")
    page.eval(f"{shown}.setAttribute('data-test', 'student')")
    page.click_on("a[data-test=student]")
    # not formgrader.loaded: offline, the page's MathJax (from a CDN) is missing and formgrade.js stops
    # there, after binding the score and comment boxes (its keyboard shortcuts are lost, not the saving)
    page.wait("location.pathname.includes('/formgrader/submissions/') && typeof formgrader !== 'undefined' && "
              "!!formgrader.grades && formgrader.grades.loaded && !!formgrader.comments && formgrader.comments.loaded",
              timeout=120)


def focus(page, element_id: str) -> None:
    """Click the box, again if the page moved under the pointer (a « saved » mark fading in shifts it)."""
    for _ in range(5):
        page.click_on(f"#{element_id}")
        if page.eval(f"document.activeElement.id === {json.dumps(element_id)}"):
            return
        time.sleep(0.5)
    raise AssertionError(f"the box {element_id} cannot be clicked")


def grade_by_hand(page, url: str, root: Path) -> None:
    """Type the points and a comment in the written answer's boxes, as a person would; wait until saved."""
    open_submission(page, url)
    assert page.eval(f"document.getElementById('{ANSWER}').classList.contains('needs_manual_grade')")
    focus(page, ANSWER)
    page.type(POINTS)
    focus(page, f"{ANSWER}-comment")  # leaving a box saves it
    page.type(COMMENT)
    assert page.eval(f"document.getElementById('{ANSWER}-comment').value") == COMMENT
    page.click_on(".panel-title")
    deadline = time.monotonic() + 30
    while True:
        with gradebook(root) as gb:
            grade = gb.find_grade(ANSWER, A, A, STUDENT)
            comment = gb.find_comment(ANSWER, A, A, STUDENT)
            saved = (grade.manual_score, grade.needs_manual_grade, comment.manual_comment)
        if saved == (float(POINTS), False, COMMENT) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert saved == (float(POINTS), False, COMMENT), saved


def shown_in_formgrader(page, url: str) -> list:
    """[the score box's value, still flagged « needs manual grade »] on the student's page."""
    open_submission(page, url)
    return page.eval(f"[document.getElementById('{ANSWER}').value, "
                     f"document.getElementById('{ANSWER}').classList.contains('needs_manual_grade')]")


def test_formgrader_round_trip_keeps_every_export_in_agreement(session_dir, tmp_path):
    t0 = time.monotonic()
    root = generated_course(session_dir, tmp_path / "course")
    built = examples.build(MAIN)
    moodle_zip = moodle_fixtures.write_moodle_zip(
        tmp_path / "travaux.zip", {name: (pid, built[ex][1]) for name, (pid, ex) in CLASS.items()}, layout="folders")
    sheet = moodle_fixtures.write_worksheet(tmp_path / "feuille.csv", {n: pid for n, (pid, _) in CLASS.items()},
                                            language="fr", delimiter=";")
    steps, procs, clock = {}, {}, {}
    # JupyterLab open from the start to the end, as on the instructor's screen during the week
    with headless.jupyter_lab(root, tmp_path / "jupyterlab.log", TOKEN) as url, \
            headless.browser(tmp_path / "profile", 1280, 900) as page:
        procs["correction"] = run_grading(root, "--moodle-zip", str(moodle_zip), "--moodle-worksheet", str(sheet),
                                          "--cell-timeout", CELL_TIMEOUT)
        assert_ok(procs["correction"], "correction")
        steps["1 correction"] = numbers(root)
        clock["1 correction"] = time.monotonic() - t0
        page.goto(f"{url}/formgrader?token={TOKEN}")  # the formgrader's entry (Nbgrader menu) logs the browser in

        autograded = root / "autograded" / STUDENT / A / f"{A}.ipynb"
        before = (autograded.read_bytes(), scores(root, STUDENT))
        assert formgrader_status(page, url) == "needs manual grading"
        refusal = click_autograde(page, url)
        clock["autograde"] = time.monotonic() - t0
        page.screenshot(tmp_path / "autograde_refuse.png")
        assert "python -m tpkit.grading" in refusal and "n'est pas utilisé dans ce cours" in refusal, refusal
        assert (autograded.read_bytes(), scores(root, STUDENT)) == before  # nothing graded nor removed

        grade_by_hand(page, url, root)
        page.screenshot(tmp_path / "note_manuelle.png", full_page=True)
        steps["2 note à la main"] = numbers(root)
        clock["2 note à la main"] = time.monotonic() - t0

        procs["export"] = run_grading(root, "--export-only")  # the worksheet: remembered from step 1
        assert_ok(procs["export"], "export")
        steps["3 --export-only"] = numbers(root)
        clock["3 --export-only"] = time.monotonic() - t0
        procs["recorrection"] = run_grading(root, "--students", STUDENT, "--force", "--cell-timeout", CELL_TIMEOUT)
        assert_ok(procs["recorrection"], "recorrection")
        steps["4 --students --force"] = numbers(root)
        clock["4 --students --force"] = time.monotonic() - t0
        procs["classe"] = run_grading(root, "--force", "--cell-timeout", CELL_TIMEOUT)
        assert_ok(procs["classe"], "classe")
        steps["5 classe --force"] = numbers(root)
        clock["5 classe --force"] = time.monotonic() - t0
        after_regrades = [formgrader_status(page, url), shown_in_formgrader(page, url)]
        page.screenshot(tmp_path / "apres_recorrection.png")
    print(f"\n{'':<22} (en {time.monotonic() - t0:.0f} s ; fin des étapes à "
          f"{', '.join(f'{k} {v:.0f} s' for k, v in clock.items())})\n" + "\n".join(line(k, v) for k, v in steps.items()))

    first, by_hand = steps["1 correction"], steps["2 note à la main"]
    # graded: the written answer waits, every export says provisional, the worksheet has no grade
    auto = first["csv"]
    assert agree(first) and first["page_provisional"] and first["worksheet"] == "", first
    assert (first["csv_answer"], first["page_answer"], first["zip_answer"]) == ("", "—", "—"), first
    assert first["written"][ANSWER] == [None, True], first["written"]
    # graded by hand, not exported yet: the gradebook has the points, the exports still agree with each other
    assert by_hand["gradebook"] == auto + float(POINTS) and by_hand["written"][ANSWER] == [float(POINTS), False]
    assert {k: v for k, v in by_hand.items() if k not in ("gradebook", "written")} == \
        {k: v for k, v in first.items() if k not in ("gradebook", "written")}
    # exported, regraded, the class regraded: final everywhere, the hand grade and its comment kept
    for step in ("3 --export-only", "4 --students --force", "5 classe --force"):
        n = steps[step]
        assert agree(n), (step, n)
        assert n["csv"] == auto + float(POINTS) and not n["page_provisional"], (step, n)
        assert n["worksheet"] == f"{auto + float(POINTS):.2f}".replace(".", ",") and n["comment"].startswith("Note :")
        assert (n["csv_answer"], n["page_answer"], n["zip_answer"]) == (POINTS, POINTS, POINTS), (step, n)
        assert n["written"][ANSWER] == [float(POINTS), False] and n["status"] == "ok", (step, n)
        assert n["page_comment"] and n["zip_comment"], step
    assert "Feuille Moodle : exports/moodle_worksheet.csv" in procs["export"].stdout, procs["export"].stdout
    for step in ("recorrection", "classe"):  # the answer's text did not change: nothing said about it
        assert "réponse rédigée modifiée" not in procs[step].stdout, procs[step].stdout
    # the formgrader, open all along, shows the answer graded (not « needs manual grading » again)
    assert after_regrades == ["graded", [POINTS, False]], after_regrades
