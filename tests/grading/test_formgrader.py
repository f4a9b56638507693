"""The formgrader is safe (issue #9): its Generate Feedback button, clicked in headless Chromium on a
JupyterLab started in a graded course on a loopback port, writes the kit's French pages, without the
hidden tests. `nbgrader generate_feedback` goes through the same configuration (nbgrader_config.py)."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import headless
import pytest
from test_pipeline import EXAMPLES, A, course, first_run, hidden_lines, re_text, scores, shared  # noqa: F401
from traitlets.config.loader import PyFileConfigLoader
from traitlets.utils.importstring import import_item

from tpkit import paths, release
from tpkit.grading.feedback_exporter import FEEDBACK_PREPROCESSORS, FeedbackExporter

TOKEN = "tpkit-test"


def test_config_names_the_kit_feedback():
    """nbgrader_config.py and the kit's converter name the same exporter and preprocessors."""
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(paths.ROOT)).load_config()
    assert import_item(cfg.GenerateFeedback.exporter_class) is FeedbackExporter
    assert [import_item(p) for p in cfg.GenerateFeedback.preprocessors] == list(FEEDBACK_PREPROCESSORS)


def graded_copy(first_run, tmp_path) -> Path:  # noqa: F811 (fixture imported from test_pipeline)
    """The course as the first grading run left it (its own copy: the button rewrites feedback/)."""
    *_, saved = first_run
    root = tmp_path / "course"
    shutil.copytree(saved / "course", root, ignore=shutil.ignore_patterns("*.lock"))
    shutil.rmtree(root / "feedback")
    return root


def assert_kit_pages(root: Path, students) -> None:
    hidden = hidden_lines()
    for student in students:
        page = (root / "feedback" / student / A / f"{A}.html").read_text(encoding="utf-8")
        assert "note :" in page and "Points :" in page, student  # the French template
        for marker in ("BEGIN HIDDEN", "END HIDDEN", "verifier(", "tpkit"):
            assert marker not in page, (student, marker)
        text = re_text(page)
        assert not [h for h in hidden if h in text], student


@pytest.mark.slow
@pytest.mark.skipif(headless.CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_formgrader_generate_feedback_button_writes_the_french_pages(first_run, tmp_path):  # noqa: F811 (fixture imported from test_pipeline)
    root = graded_copy(first_run, tmp_path)
    graded = sorted(p.name for p in (root / "autograded").iterdir())
    assert "reference" in graded and "vierge" in graded
    with headless.jupyter_lab(root, tmp_path / "jupyterlab.log", TOKEN) as url, headless.browser(tmp_path / "profile") as page:
        page.goto(f"{url}/formgrader/manage_assignments?token={TOKEN}")
        page.wait("document.querySelector('.generate-feedback a')", timeout=120)
        page.screenshot(tmp_path / "formgrader_before.png")
        page.eval("document.querySelector('.generate-feedback a').click()")
        page.wait("document.querySelector('#success-modal, #error-modal')", timeout=400)
        page.screenshot(tmp_path / "formgrader_after.png")
        assert page.eval("!!document.querySelector('#success-modal')"), \
            page.eval("document.querySelector('#error-modal').innerText")
    assert_kit_pages(root, graded)
    blank = (root / "feedback" / "vierge" / A / f"{A}.html").read_text(encoding="utf-8")
    assert "Échec du test" in blank
    loop = (root / "feedback" / "boucle_infinie" / A / f"{A}.html").read_text(encoding="utf-8")
    assert "Remarques sur votre rendu" in loop  # the grading run's remarks, read from its report


@pytest.mark.slow
def test_nbgrader_generate_feedback_command_writes_the_french_pages(first_run, tmp_path):  # noqa: F811 (fixture imported from test_pipeline)
    root = graded_copy(first_run, tmp_path)
    proc = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "generate_feedback", A,
                           "--student", "erreurs_typiques", "--force"], cwd=root, env=release.nbgrader_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert_kit_pages(root, ["erreurs_typiques"])
    *_, saved = first_run
    address = re.compile(r"0x[0-9a-f]{6,}")
    kit = (saved / "feedback" / "erreurs_typiques" / A / f"{A}.html").read_text(encoding="utf-8")
    page = (root / "feedback" / "erreurs_typiques" / A / f"{A}.html").read_text(encoding="utf-8")
    assert address.sub("", page) == address.sub("", kit)  # the same page as the kit's


@pytest.mark.slow
def test_plain_nbgrader_autograde_refuses_and_leaves_the_grades(first_run, tmp_path):  # noqa: F811 (fixture imported from test_pipeline)
    """What the formgrader's Autograde button runs (nbgrader's Autograde, --force): a French refusal
    naming the kit's command, before anything is removed (nbgrader's --force removes the autograded
    folder first) or graded."""
    root = graded_copy(first_run, tmp_path)
    autograded = root / "autograded" / "reference" / A / f"{A}.ipynb"
    before = autograded.read_bytes()
    grades = scores(root, "reference")
    proc = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "autograde", A, "--student", "reference",
                           "--force"], cwd=root, env=release.nbgrader_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert "python -m tpkit.grading" in proc.stdout + proc.stderr and "Traceback" not in proc.stdout + proc.stderr
    assert autograded.read_bytes() == before and scores(root, "reference") == grades
