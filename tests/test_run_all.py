"""« Exécuter tout » ends on the self-check table, in every assignment (issue #26): a failing visible
check shows its French message without stopping the run, the table lists every question (✓, ✗ with
the message, « non exécutée » with the reason), a check that fails because of an earlier answer names
that question first; under nbgrader the same check still raises (the cell scores 0)."""
import sys

import nbformat
import pytest
from conftest import once

from tpkit import assignments, execution, labels, paths, selfcheck, submissions, vocabulary
from tpkit.catalogue import runner

MAIN = "tp_reseaux_neurones"  # the course's main assignment

#: one typical mistake per assignment (the main one: the issue's example, softmax on the wrong axis)
MISTAKE = {"tp_reseaux_neurones": "softmax_mauvais_axe",
           "tp_pima_jouet": "standardisation_test_propres_stats",
           "tp_soyez_curieux": "entrainer_sans_zero_grad"}


def _table(nb) -> str:
    """The markdown the last cell displayed."""
    return "".join(o.get("data", {}).get("text/markdown", "") for o in nb.cells[-1].get("outputs", []))


def _rows(table: str) -> dict:
    """label -> (mark, message) of every question row."""
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if len(cells) == 4 and cells[1].startswith("**"):
            number, title = cells[1][2:].split("** ")
            rows[f"{number} {title}"] = (cells[0], cells[3])
    return rows


def _setup_namespace(assignment, monkeypatch, grading: bool) -> dict:
    if grading:
        monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    else:
        monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    nb = submissions.read(paths.source_notebook(assignment))
    ns = {}
    exec(selfcheck.setup_source(nb), ns)  # noqa: S102 (the kit's own generated code)
    exec(selfcheck.code_source(nb).replace("display(Markdown(_tableau_verifications()))", ""), ns)  # noqa: S102
    return ns


def test_failing_visible_check_prints_for_the_student_and_raises_under_nbgrader(monkeypatch, capsys):
    ns = _setup_namespace(MAIN, monkeypatch, grading=False)
    with ns["_verification"]("Q2.3 pred"):
        assert False, "les lignes de Ŷ ne somment pas à 1"
    with ns["_verification"]("Q2.5 et Q2.6 cout"):
        assert False, "au départ le coût vaut 6.9"
    shown = capsys.readouterr().out
    assert "✗ Q2.3 pred : les lignes de Ŷ ne somment pas à 1" in shown
    assert "✗ Q2.5 et Q2.6 cout : corrigez d'abord Q2.3 pred" in shown and "au départ le coût vaut 6.9" in shown
    ns = _setup_namespace(MAIN, monkeypatch, grading=True)
    with pytest.raises(AssertionError, match="somment"):
        with ns["_verification"]("Q2.3 pred"):
            assert False, "les lignes de Ŷ ne somment pas à 1"
    assert isinstance(ns["_verifications"]["Q2.3 pred"], AssertionError)
    with pytest.raises(KeyboardInterrupt):  # an interrupted kernel stays interrupted, student or not
        with ns["_verification"]("Q2.3 pred"):
            raise KeyboardInterrupt


def test_table_says_where_and_why_a_run_stopped(monkeypatch):
    """Run All stopped on the stub of Q2.3 (the last error IPython kept): that question is « non exécutée »
    with the error, the later ones name it, the ones above keep their verdicts."""
    ns = _setup_namespace(MAIN, monkeypatch, grading=False)
    for q in ("Q1.1 chargement", "Q1.2 etiquettes", "Q1.3 dimensions", "Q1.4 onehot", "Q1.5 tenseurs", "Q2.1 W"):
        ns["_verifications"][q] = None
    ns["_verifications"]["Q2.2 B"] = AssertionError("B doit être initialisé à zéro (th.zeros)")
    monkeypatch.setattr(sys, "last_value", NotImplementedError("cellule à compléter"), raising=False)
    rows = _rows(ns["_tableau_verifications"]())
    assert rows["Q2.1 W"] == ("✓", "vérification visible réussie")
    assert rows["Q2.2 B"] == ("✗", "B doit être initialisé à zéro (th.zeros)")
    mark, message = rows["Q2.3 pred"]
    assert mark == "·" and "s'est arrêtée avant" in message and "NotImplementedError : cellule à compléter" in message
    assert rows["Q5.1 à Q5.4 minibatch"] == ("·", "non exécutée : l'exécution s'est arrêtée plus haut (Q2.3 pred)")
    assert rows["Q2.4 approximation"][0] == "✎"
    monkeypatch.delattr(sys, "last_value")
    assert _rows(ns["_tableau_verifications"]())["Q2.3 pred"] == ("·", "pas encore exécutée")


def test_setup_and_table_are_generated_in_every_assignment():
    for assignment in assignments.names():
        nb = submissions.read(paths.source_notebook(assignment))
        assert nb.cells[-1].source == selfcheck.code_source(nb), f"{assignment}: run `python -m tpkit.selfcheck`"
        setup = selfcheck.setup_cell(nb).source
        assert setup.endswith(selfcheck.setup_source(nb)), f"{assignment}: run `python -m tpkit.selfcheck`"
        found = labels.labels_of(nb)
        assert set(selfcheck.prerequisites()[assignment]) <= set(found)
        assert all(set(deps) <= set(found) for deps in selfcheck.prerequisites()[assignment].values())
        for c in nb.cells:
            meta = c.metadata.get("nbgrader", {})
            if c.cell_type == "code" and meta.get("grade"):
                visible = c.source.split("### END HIDDEN TESTS\n")[-1]
                short = found[meta["grade_id"]].short
                assert visible.startswith(f"{selfcheck.TITLE_PREFIX}{short}\n{selfcheck.guard_line(short)}\n"), short
        release = submissions.read(paths.release_notebook(assignment))
        assert release.cells[-1].source == nb.cells[-1].source, f"{assignment}: regenerate the release"
        intro = " ".join(nb.cells[0].source.split())
        assert 'raise NotImplementedError("cellule à compléter : remplacez cette ligne par votre code")' in intro
        assert "Redémarrer le noyau et exécuter toutes les cellules" in intro


def _run_all_with_mistake(assignment: str) -> dict:
    entry = {e.name: e for e in runner.entries(assignment)}[MISTAKE[assignment]]
    nb, stopped = execution.run_as_student(entry.notebook(submissions.solution_submission(assignment=assignment)),
                                           timeout=300, assignment=assignment)
    return {"stopped": stopped, "table": _table(nb), "own": entry.own,
            "ran": sum(1 for c in nb.cells if c.cell_type == "code" and c.get("execution_count")),
            "code_cells": sum(1 for c in nb.cells if c.cell_type == "code")}


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ["tp_reseaux_neurones", "tp_pima_jouet", "tp_soyez_curieux"])
def test_run_all_with_a_mistake_reaches_the_table_which_flags_that_question(session_dir, assignment):
    run = once(session_dir, f"run_all_{assignment}", lambda: _run_all_with_mistake(assignment))
    assert run["stopped"] is None and run["ran"] == run["code_cells"], run
    own = labels.label(run["own"], paths.source_notebook(assignment))
    rows = _rows(run["table"])
    assert set(rows) == {q.short for q in labels.question_labels(paths.source_notebook(assignment)).values()}
    assert rows[own][0] == "✗", rows[own]
    others = {q: r for q, r in rows.items() if q != own and r[0] not in ("✓", "✎")}
    # a later check may fail on the mistaken answer: it then names the question to fix first
    assert all(r[0] == "✗" and r[1].startswith(f"corrigez d'abord {own}") for r in others.values()), others


@pytest.mark.slow
def test_softmax_on_the_wrong_axis_blames_pred_not_the_correct_cost(session_dir):
    """The issue's example: the correct `cout` and descent no longer ask about the formula or the
    re-initialisation; they say to fix Q2.3 first."""
    run = once(session_dir, "run_all_tp_reseaux_neurones", lambda: _run_all_with_mistake("tp_reseaux_neurones"))
    rows = _rows(run["table"])
    assert "mauvais axe" in rows["Q2.3 pred"][1]
    for q in ("Q2.5 et Q2.6 cout", "Q3.1 et Q3.2 descente"):
        assert rows[q][1].startswith("corrigez d'abord Q2.3 pred"), rows[q]
        assert "l'ordre des arguments" not in rows[q][1] and "réinitialisés" not in rows[q][1]


def _stopped_on_a_stub() -> dict:
    """The solution with Q2.3's cell left as released (its stub raises): the cells up to it, then the
    table run by hand, as the student does after Run All stopped."""
    nb = submissions.solution_submission(assignment=MAIN)
    blank = {vocabulary.grade_id(c): c.source for c in submissions.blank_submission(assignment=MAIN).cells}
    k = next(i for i, c in enumerate(nb.cells) if vocabulary.grade_id(c) == "r2_pred")
    nb.cells[k].source = blank["r2_pred"]
    nb.cells = nb.cells[:k + 1] + [nb.cells[-1]]
    done, stopped = execution.run_as_student(nb, assignment=MAIN, stop_on_error=False)
    return {"stopped": stopped, "k": k, "table": _table(done)}


@pytest.mark.slow
def test_a_stub_stops_run_all_and_the_table_run_by_hand_says_where(session_dir):
    run = once(session_dir, "run_all_stopped_on_stub", _stopped_on_a_stub)
    assert run["stopped"] == run["k"]
    rows = _rows(run["table"])
    assert rows["Q2.2 B"][0] == "✓"
    assert "NotImplementedError : cellule à compléter" in rows["Q2.3 pred"][1]
    assert rows["Q2.5 et Q2.6 cout"] == ("·", "non exécutée : l'exécution s'est arrêtée plus haut (Q2.3 pred)")


def test_release_keeps_the_stub_that_raises():
    """The design choice of tpkit.selfcheck: a question not done raises (nbgrader's stub), loudly."""
    text = nbformat.writes(submissions.read(paths.release_notebook(MAIN)))
    assert 'raise NotImplementedError(\\"cellule à compléter' in text
