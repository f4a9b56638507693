"""Flakiness audit (issue #5): the reference solution, graded under 4 global seeds with one torch
thread and one of them again with two threads, always gets full marks; every value a check compares
with a threshold keeps a positive margin (the lowest margins are printed).

The suite runs a sample to stay within its time budget (three assignments' catalogues now share it);
the full audit (20 seeds, 8 with two threads, and the catalogue's sample under 10 course secrets) is
`python -m tpkit.catalogue --flakiness`, whose figures are in docs/catalogue.md. Two threads change the
order of floating-point sums, not the recipe. The checks draw their inputs from the course secret: a few
entries whose questions draw them are graded here under 2 secrets besides the suite's own (issue 23).
"""
import json

import nbformat
import pytest

from tpkit import assignments, vocabulary
from tpkit.catalogue import flakiness, runner
from tpkit.checks import AUDIT_MARK
from tpkit.execution import Result

MAIN = "tp_reseaux_neurones"  # the course's main assignment

SEEDS_1_THREAD = range(4)
SEEDS_2_THREADS = range(1)


@pytest.mark.parametrize("assignment", assignments.names())
def test_every_seed_line_is_replaced(assignment):
    """Every assignment's audit finds a seed line in each cell it declares seeded, and no other."""
    cells = flakiness.target(assignment).seeded_cells
    base = runner.base_notebook(assignment)
    seeded_before = {vocabulary.grade_id(c) for c in base.cells
                     if c.cell_type == "code" and flakiness.SEED_CALL.search(c.source)}
    assert seeded_before == set(cells)
    text = "\n".join(c.source for c in flakiness.seeded(base, 123, cells).cells if c.cell_type == "code")
    calls = [m.group(0) for m in flakiness.SEED_CALL.finditer(text)]
    assert len(calls) >= len(cells) and all(c.endswith("(123)") for c in calls)
    if assignment == MAIN:  # the setup cell and each training cell seed numpy and torch
        assert len(calls) == 2 * len(cells) and "np.random.seed(123)" in text and "th.manual_seed(123)" in text


@pytest.mark.slow
def test_reference_gets_full_marks_under_every_seed_and_thread_count():
    """One test for the whole audit (pytest 9 ignores xdist_group: a shared fixture would run twice)."""
    audit = flakiness.audit(SEEDS_1_THREAD, SEEDS_2_THREADS, assignment=MAIN)
    report = flakiness.report_text(audit)
    print("\n" + report)
    assert len(audit.runs) == len(SEEDS_1_THREAD) + len(SEEDS_2_THREADS)
    assert not audit.flaky(), report
    # every value a check compares with a threshold was measured, and kept a margin
    assert not audit.missing_measures(), report
    margins = audit.lowest_margins()
    assert set(margins) == set(flakiness.target(MAIN).limits()), report
    assert all(m > 0 for m, *_ in margins.values()), report


SECRETS = flakiness.audit_secrets(2)
# mistakes of questions whose checks call the student's functions on drawn inputs, and a valid variant
SECRET_ENTRIES = ["softmax_mauvais_axe", "pred2_sans_relu", "cout_cross_entropy_log_softmax"]


def test_audit_secrets_are_fixed_and_long():
    assert flakiness.audit_secrets(10) == flakiness.audit_secrets(10)
    assert len(set(flakiness.audit_secrets(10))) == 10 == flakiness.AUDIT_SECRETS
    assert all(s.bit_length() > 128 for s in flakiness.audit_secrets(10))


def test_one_audited_run_reads_back_as_one_report_per_secret():
    """A question that fails under one secret only loses its points under that secret."""
    a, b = SECRETS
    cell = nbformat.v4.new_code_cell("verifier(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": AUDIT_MARK + json.dumps(
        {"qid": "q2_pred", "verdicts": {str(a): None, str(b): "`pred` ne renvoie pas softmax"}})})]
    nb = nbformat.v4.new_notebook(cells=[cell])
    assert flakiness.verdicts(nb) == {"q2_pred": {a: None, b: "`pred` ne renvoie pas softmax"}}
    entry = next(e for e in runner.entries(MAIN) if e.kind == "variant")
    failed = {"q2_pred": Result("q2_pred", 0.0, 1.0, "AssertionError: `pred` ne renvoie pas softmax"),
              "q2_cout": Result("q2_cout", 1.0, 1.0, "")}
    report = runner.Report([runner.Outcome(entry, failed, nb=nb)], 1.0, list(failed))
    kept, lost = flakiness.under_secret(report, a), flakiness.under_secret(report, b)
    assert not kept.outcomes[0].lost() and kept.full_marks()
    assert lost.outcomes[0].lost() == {"q2_pred": 1.0} and lost.problems()


@pytest.mark.slow
def test_entries_are_judged_alike_under_other_course_secrets():
    runs = flakiness.catalogue_under_secrets(MAIN, SECRETS, selected=[e for e in runner.entries(MAIN)
                                                                if e.name in SECRET_ENTRIES])
    report = flakiness.secrets_report_text(runs, MAIN)
    print("\n" + report)
    assert [r.secret for r in runs] == SECRETS
    assert not flakiness.secrets_flaky(runs), report
    for r in runs:
        assert len(r.report.caught()) == 2 and len(r.report.full_marks()) == 1, report
