"""Training cells of `tp_pima_jouet` re-run from a state the grader chooses (issue 23, item 2;
tpkit.checks.pima_reexec).

As tests/test_reexec.py for the main assignment: the checks run in this process through the witness,
over the namespace of the reference solution's cells executed here (no kernel). With the cells as
submitted (`Witness.cells`, what trusted grading gives) the checks of Q2.5, Q3.4 and Q4.2 re-run their
cell on other training examples and other seeds and replay the training themselves. Each attack below
passes the untrusted checks (no re-run) and fails its question in trusted mode; the reference and the
catalogue's valid variants pass in both."""

import pytest

from tpkit import paths
from tpkit.assignments.tp_pima_jouet.checks import section2_regression, section3_mlp, section4_toy
from tpkit.assignments.tp_pima_jouet import reexec as pima_reexec
from tpkit.witness import LocalTransport, Witness

from reexec_helpers import Notebook, attack, data_folder, judge

A = "tp_pima_jouet"
TRAINING = {"r2_pima_lineaire": section2_regression.check_j2_pima_lineaire, "r3_pima": section3_mlp.check_j3_pima,
            "r4_jouet": section4_toy.check_j4_jouet}


NB = Notebook(paths.source_notebook(A))
CELLS = NB.cells
ORDER = list(CELLS)
#: the cells before the first training cell of each section (what its training needs)
BEFORE = {"r2_pima_lineaire": ORDER[:ORDER.index("r2_pima_lineaire")],
          "r3_pima": [g for g in ORDER[:ORDER.index("r3_pima")] if g != "r2_pima_lineaire"],
          "r4_jouet": [g for g in ORDER[:ORDER.index("r4_jouet")] if g not in ("r2_pima_lineaire", "r3_pima")]}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return data_folder(tmp_path_factory, "reexec_pima", paths.source_dir(A), ("pima.npz", "toy2d.npz"))


def _namespace(folder, sources: dict, upto: str) -> dict:
    """The namespace after the cells that come before `upto` (sources: the cells as written)."""
    return NB.namespace(folder, BEFORE[upto], sources)


@pytest.fixture(scope="module")
def base(folder):
    return {gid: _namespace(folder, CELLS, gid) for gid in TRAINING}


# ------------------------------------------------------------------ honest cells pass
@pytest.mark.parametrize("gid", list(TRAINING))
def test_the_reference_passes_with_its_cell_rerun(base, gid):
    ns = dict(base[gid])
    NB.run(ns, gid)
    assert judge(TRAINING[gid], dict(ns)) is None
    assert judge(TRAINING[gid], ns, dict(CELLS)) is None


def _catalogue_variants():
    """The catalogue's valid variants that change answer cells (and no structure): the training
    cells call what they change, so each must pass every re-run."""
    from tpkit.assignments.tp_pima_jouet.variants import VARIANTS
    return [v for v in VARIANTS if not v.edits and v.changes]


@pytest.mark.slow
@pytest.mark.parametrize("variant", _catalogue_variants(), ids=lambda v: v.name)
def test_catalogue_variants_pass_their_reruns(folder, variant):
    sources = NB.changed(variant.changes)
    for gid, check in TRAINING.items():
        ns = _namespace(folder, sources, gid)
        NB.run(ns, gid, sources[gid])
        assert judge(check, ns, sources) is None, gid


# ------------------------------------------------------------------ attacks
def _attack(base, gid, source):
    """The attack passes in untrusted mode and fails in trusted mode with the re-run's message."""
    ns = dict(base[gid])
    NB.run(ns, gid, source)
    return attack(TRAINING[gid], ns, CELLS, gid, source)


def _memorising(gid):
    """A cell that trains once, then hands back what it memorised (no training on the data it is
    given): values copied from an earlier run."""
    names = {"r2_pima_lineaire": ("lst_loss", "W", "B", "taux_test"),
             "r3_pima": ("mlp", "lst_loss_mlp", "mlp_mb", "lst_loss_mb", "taux_test_mlp", "taux_test_mb"),
             "r4_jouet": ("W_j", "B_j", "lst_loss_lin_j", "mlp_j", "lst_loss_mlp_j", "taux_test_lin_j",
                          "taux_test_mlp_j")}[gid]
    body = "\n".join("    " + line for line in CELLS[gid].split("\n"))
    return (f"if '_memoire' not in globals():\n{body}\n    _memoire = ({', '.join(names)})\n"
            f"{', '.join(names)} = _memoire\n")


@pytest.mark.parametrize("gid", list(TRAINING))
def test_copied_values_lose_the_question(base, gid):
    message = _attack(base, gid, _memorising(gid))
    assert "ne correspond pas" in message or "jamais été appelé" in message or "aucun coût" in message


def test_a_descent_on_the_test_set_loses_q2_5(base):
    """W, B learnt on the test set, the costs made to agree with the training set's."""
    source = NB.edit("r2_pima_lineaire", ("lst_loss = descente(X, Y, W, B, step=1, niter=200)",
                                           "lst_loss = descente(Xt, Yt, W, B, step=1, niter=200)\n"
                                           "lst_loss[-1] = float(cout(Y, pred(X, W, B)))"))
    assert "ne correspond pas" in _attack(base, "r2_pima_lineaire", source)


def test_minibatches_from_the_test_set_lose_q3_4(base):
    source = NB.edit("r3_pima", ("apprendre_mb(mlp_mb, X, Y,", "apprendre_mb(mlp_mb, Xt, Yt,"))
    assert "ensemble de test Xt" in _attack(base, "r3_pima", source)


def test_minibatches_from_a_fixed_subset_lose_q3_4(base):
    source = NB.edit("r3_pima", ("apprendre_mb(mlp_mb, X, Y,", "apprendre_mb(mlp_mb, X[:100], Y[:100],"))
    assert "exemples différents" in _attack(base, "r3_pima", source)


def test_a_network_trained_on_the_test_set_loses_q4_2(base):
    source = NB.edit("r4_jouet", ("apprendre(mlp_j, X2, Y2,", "apprendre(mlp_j, Xt2, Yt2,"))
    assert "ne correspond pas" in _attack(base, "r4_jouet", source)


def test_untrusted_mode_reruns_nothing():
    assert not pima_reexec.active(Witness(LocalTransport({})))
    assert pima_reexec.active(Witness(LocalTransport({}), cells={"r3_pima": "pass"}))
