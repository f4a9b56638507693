"""The coordinator's writes of a worker's result into the course (tpkit.grading.writeback): gradebook
entries with nbgrader's API (manual scores and the instructor's flags kept), output folders copied
without links, a failed submission's outputs removed."""
import os

from manual_book import gradebook_graded_by_hand  # noqa: F401  (the fixture manual_gradebook)
from nbgrader.api import Gradebook

import pytest

from tpkit.grading import writeback
from tpkit.grading.options import Options

A = "tp_reseaux_neurones"  # the course's main assignment


def test_the_coordinator_applies_a_result_and_keeps_manual_scores(tmp_path, manual_gradebook):
    """A checked result goes into the gradebook with nbgrader's API: automatic scores, flags, comments,
    timestamp; a manual score already there stays (the feedback the worker rendered showed it too)."""
    from datetime import datetime as dt
    url, cfg = manual_gradebook(needs=False)
    book = {"timestamp": dt(2026, 12, 1, 10, 0), "late_penalty": None,
            "grades": {"q1": {"auto_score": 1.0, "needs_manual_grade": False},
                       "m1": {"auto_score": None, "needs_manual_grade": True}},
            "comments": {"r1": "Pas de réponse.", "m1": None}}
    writeback.apply_grades(cfg, Options(root=tmp_path, assignment=A), "s1", book)
    with Gradebook(url, "cours") as gb:
        q1, m1 = gb.find_grade("q1", A, A, "s1"), gb.find_grade("m1", A, A, "s1")
        assert (q1.auto_score, q1.needs_manual_grade) == (1.0, False)
        assert (m1.manual_score, m1.score, m1.needs_manual_grade) == (1.5, 1.5, True)
        assert gb.find_comment("r1", A, A, "s1").auto_comment == "Pas de réponse."
        assert gb.find_submission(A, "s1").timestamp == dt(2026, 12, 1, 10, 0)


@pytest.mark.parametrize("before, worker_says, after", [
    (False, False, False),  # graded by hand, found unchanged by the worker: stays graded
    (False, True, True),  # graded by hand, changed: to grade again
    (True, False, True),  # flagged (changed at an earlier regrade), not graded since: stays flagged
])
def test_the_coordinator_keeps_a_hand_grade_only_where_the_instructor_gave_it(tmp_path, manual_gradebook, before,
                                                                              worker_says, after):
    url, cfg = manual_gradebook(needs=before)
    book = {"timestamp": None, "late_penalty": None, "comments": {},
            "grades": {"q1": {"auto_score": 1.0, "needs_manual_grade": False},
                       "m1": {"auto_score": None, "needs_manual_grade": worker_says}}}
    writeback.apply_grades(cfg, Options(root=tmp_path, assignment=A), "s1", book)
    with Gradebook(url, "cours") as gb:
        m1 = gb.find_grade("m1", A, A, "s1")
        assert (m1.manual_score, m1.needs_manual_grade) == (1.5, after)
        # an answer never graded by hand is never cleared by a worker either
        m1.manual_score = None
        gb.db.commit()
    writeback.apply_grades(cfg, Options(root=tmp_path, assignment=A), "s1",
                          dict(book, grades={"m1": {"auto_score": None, "needs_manual_grade": False}}))
    with Gradebook(url, "cours") as gb:
        assert gb.find_grade("m1", A, A, "s1").needs_manual_grade


def test_output_folders_are_copied_without_links(tmp_path):
    """A worker's folder holds what its student's code could leave: files, folders, links to anything.
    Only regular files and folders reach the course."""
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "sub").mkdir(parents=True)
    (src / "page.html").write_text("page", encoding="utf-8")
    (src / "sub" / "fig.png").write_bytes(b"png")
    secret = tmp_path / "secret.txt"
    secret.write_text("gradebook", encoding="utf-8")
    os.symlink(secret, src / "lien.txt")
    os.symlink(tmp_path, src / "dossier")
    writeback.copy_regular_files(src, dest)
    found = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert found == ["page.html", "sub", "sub/fig.png"]
    assert (dest / "sub" / "fig.png").read_bytes() == b"png"


def test_outputs_replace_the_course_s_and_a_failure_removes_them(tmp_path):
    """The worker's autograded/ and feedback/ folders of one student replace what the course had; a
    failed submission leaves neither."""
    from traitlets.config import Config
    options = Options(root=tmp_path, assignment=A)
    cfg = Config()
    cfg.CourseDirectory.root = str(tmp_path)
    stale = tmp_path / "feedback" / "s1" / A / "ancien.html"
    stale.parent.mkdir(parents=True)
    stale.write_text("ancien", encoding="utf-8")
    private = tmp_path / "w0"
    for step in ("autograded", "feedback"):
        folder = private / step / "s1" / A
        folder.mkdir(parents=True)
        (folder / f"{step}.txt").write_text(step, encoding="utf-8")
    writeback.copy_outputs(cfg, options, "s1", private)
    assert [p.name for p in (tmp_path / "feedback" / "s1" / A).iterdir()] == ["feedback.txt"]
    assert (tmp_path / "autograded" / "s1" / A / "autograded.txt").read_text(encoding="utf-8") == "autograded"
    writeback.remove_outputs(cfg, options, "s1")
    assert not (tmp_path / "feedback" / "s1" / A).exists() and not (tmp_path / "autograded" / "s1" / A).exists()
