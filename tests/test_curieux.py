"""The bonus assignment `tp_soyez_curieux` (section 6 and a convolutional network, issue #11 items 2-3):
its release, its question labels, its grading through the real command (solution: every autograded
point, blank release: 0) and its catalogue of mistakes and valid variants."""
import subprocess
import sys

import pytest
from nbgrader.api import Gradebook

from tpkit import assignments, labels, paths, release, submissions, vocabulary
from tpkit.assignments.tp_soyez_curieux import mistakes as catalogue
from tpkit.catalogue import runner, sampling

from conftest import generated_course, once

A = catalogue.ASSIGNMENT
AUTO_POINTS = 10.0   # autograded points; the 5 written answers (2.5 points) are graded by hand


def _graded(nb):
    return [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def test_release_is_the_source_without_solutions():
    source, released = submissions.read(catalogue.SOURCE_NOTEBOOK), submissions.read(catalogue.RELEASE_NOTEBOOK)
    assert [vocabulary.grade_id(c) for c in source.cells] == [vocabulary.grade_id(c) for c in released.cells]
    text = "\n".join(c.source for c in released.cells)
    for marker in release.LEAK_MARKERS:
        assert marker not in text
    for src, rel in zip(source.cells, released.cells):
        if vocabulary.is_answer(src) and src.cell_type == "code":
            assert "raise NotImplementedError(\"cellule à compléter" in rel.source
        if vocabulary.is_answer(src) and src.cell_type == "markdown":
            assert rel.source == "VOTRE RÉPONSE ICI"
        if src.metadata.get("nbgrader", {}).get("grade") and src.cell_type == "code":
            hidden = src.source.split("### END HIDDEN TESTS\n")
            assert len(hidden) == 2 and rel.source == hidden[1], vocabulary.grade_id(src)
    assert (paths.ROOT / "release" / A / "digitz.npz").read_bytes() == (paths.DATA / "digitz.npz").read_bytes()


def test_every_graded_cell_has_a_question_number_and_the_bonus_is_said():
    found = labels.question_labels(catalogue.SOURCE_NOTEBOOK)
    graded = [vocabulary.grade_id(c) for c in _graded(submissions.read(catalogue.SOURCE_NOTEBOOK))]
    assert set(found) == set(graded) and len(graded) == 13
    assert all(found[g].number.startswith("Q6.") for g in graded)
    assert sum(lab.points for lab in found.values()) == AUTO_POINTS + 2.5
    intro = submissions.read(catalogue.SOURCE_NOTEBOOK).cells[0].source
    assert "bonus" in intro and "en dehors de la note sur 20" in intro


def test_checks_are_registered():
    from tpkit.checks import CHECKS
    tests = [vocabulary.grade_id(c) for c in _graded(submissions.read(catalogue.SOURCE_NOTEBOOK))
             if c.cell_type == "code"]
    assert tests and all(q in CHECKS for q in tests)


def test_catalogue_size():
    assert assignments.get(A).mistakes == catalogue.__name__
    mistakes = [e for e in runner.entries(A) if e.kind == "mistake"]
    variants = [e for e in runner.entries(A) if e.kind == "variant"]
    assert len(mistakes) >= 15 and len(variants) >= 5
    # every autograded question has at least one mistake of its own
    own = {e.own for e in mistakes}
    assert own == {vocabulary.grade_id(c) for c in _graded(submissions.read(catalogue.SOURCE_NOTEBOOK))
                   if c.cell_type == "code"}


@pytest.mark.slow
def test_grading_command_grades_the_examples(session_dir):
    """`python -m tpkit.grading --examples --assignment tp_soyez_curieux`: the reference gets every
    autograded point, the blank release 0, the typical mistakes lose their own questions only; the
    exports go to exports/tp_soyez_curieux/."""
    from tpkit import examples

    def compute():
        course = generated_course(session_dir, session_dir / "course_curieux", A)
        proc = subprocess.run([sys.executable, "-m", "tpkit.grading", "--root", str(course), "--examples",
                               "--assignment", A, "--workers", "2", "--no-feedback"], cwd=course,
                              env=release.nbgrader_env(), capture_output=True, text=True, timeout=900)
        out = {"returncode": proc.returncode, "output": (proc.stdout + proc.stderr)[-3000:],
               "exports": sorted(p.name for p in (course / "exports" / A).iterdir())}
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "rn_pytorch") as gb:
            for student in examples.build(assignment=A):
                sub = gb.find_submission_notebook(A, A, student)
                out[student] = {g.cell.name: [g.auto_score, g.max_score, g.needs_manual_grade] for g in sub.grades}
        return out
    run = once(session_dir, "grading_curieux", compute)
    assert run["returncode"] == 0, run["output"]
    assert "grades.csv" in run["exports"] and "rapport_classe.html" in run["exports"]
    auto = {name: s for name, s in run["reference"].items() if not s[2]}
    assert sum(s[1] for s in auto.values()) == AUTO_POINTS
    assert all(s[0] == s[1] for s in auto.values()), auto
    blank = {name: s for name, s in run["vierge"].items() if not s[2]}
    # unchanged written answers are scored 0 by nbgrader itself (no manual grading needed)
    assert set(auto) <= set(blank) and all(s[0] == 0 for s in blank.values()), blank
    own = {e.name: e.own for e in runner.entries(A)}
    lost = {q for q, (s, m, manual) in run["erreurs_typiques"].items() if not manual and s < m}
    assert lost == {own[name] for name in assignments.get(A).typical}, run["erreurs_typiques"]


@pytest.mark.slow
def test_catalogue_sensitivity_specificity_blast_radius(session_dir):
    def compute():
        # the suite's sample (every question's first mistake, ...); TPKIT_CATALOGUE=full for all
        report = runner.run(sampling.for_suite(runner.entries(A)), workers=2, assignment=A)
        return {"figures": report.figures(), "problems": report.problems()}
    result = once(session_dir, "catalogue_curieux", compute)
    assert result["problems"] == []
    f = result["figures"]
    assert f["sensitivity"] == 1.0 and f["specificity"] == 1.0 and f["blast_radius"] == 0.0


def test_witness_trace_names_the_torch_functions_of_a_forward():
    """The CNN check reads what a forward runs, whether written with layers or torch.nn.functional."""
    import torch
    import torch.nn.functional as F

    from tpkit.witness import LocalTransport, Witness

    class Layers(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.pool = torch.nn.Conv2d(1, 2, 3), torch.nn.MaxPool2d(2)

        def forward(self, x):
            return self.pool(self.conv(x))

    def functional(x):
        return F.avg_pool2d(F.conv2d(x, torch.ones(1, 1, 3, 3)), 2)

    w = Witness(LocalTransport({"a": Layers(), "b": functional, "c": torch.nn.Linear(4, 2)}))
    x = torch.rand(1, 1, 8, 8)
    assert {"conv2d", "max_pool2d"} <= w.trace(w.get("a"), [x])
    assert {"conv2d", "avg_pool2d"} <= w.trace(w.get("b"), [x])
    assert not any("conv" in n or "pool" in n for n in w.trace(w.get("c"), [torch.rand(3, 4)]))


def test_catalogue_command_knows_the_bonus():
    """`python -m tpkit.catalogue --assignment tp_soyez_curieux` takes this catalogue (an unknown entry
    name is refused with the bonus's entries, before anything runs)."""
    from tpkit.catalogue.__main__ import main
    with pytest.raises(SystemExit) as exc:
        main(["--assignment", A, "--only", "pas_une_entree"])
    assert exc.value.code == 2
    assert main(["--assignment", "tp_inconnu"]) == 2


@pytest.mark.slow
def test_reference_gets_full_marks_under_other_seeds_and_two_threads():
    """2 seeds with one torch thread, 1 with two (the full audit, 20 + 8 seeds, is in
    docs/thresholds.md, section Bonus); the CNN's accuracy keeps a positive margin."""
    from tpkit.catalogue import flakiness
    audit = flakiness.audit(range(2), range(1), assignment=A)
    report = flakiness.report_text(audit)
    assert len(audit.runs) == 3 and not audit.flaky(), report
    assert not audit.missing_measures(), report
    margins = audit.lowest_margins()
    assert set(margins) == {"cnn_test_acc"} and all(m > 0 for m, *_ in margins.values()), report
