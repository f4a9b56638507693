"""Training cells re-run from a state the grader chooses (issue 23, item 2; tpkit.checks.reexec).

The checks run in this process through the witness, over the namespace of the reference solution's
cells executed here (no kernel): with the cells as submitted (`Witness.cells`, what trusted grading
gives) every training check re-runs its cell on other training examples and other seeds and replays the
training itself. Each attack below passes the checks of the untrusted mode (no re-run) and fails its
question in trusted mode; the reference and correct variants pass in both."""
import random

import numpy as np
import pytest
import torch

from tpkit import paths
from tpkit.assignments.tp_reseaux_neurones import reexec
from tpkit.assignments.tp_reseaux_neurones.checks import section3_descent as s3, section4_mlp as s4, section5_minibatch as s5
from tpkit.checks.tools import CheckFailed
from tpkit.witness import LocalTransport, Witness

from reexec_helpers import SECRET, Notebook, attack, data_folder, judge

MAIN = "tp_reseaux_neurones"  # the course's main assignment

SKIPPED = ("r3_experiences", "r3_quadratique", "r4_experiences")  # ungraded, slow


NB = Notebook(paths.source_notebook(MAIN))
CELLS = NB.cells
ORDER = list(CELLS)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The namespace after sections 1 and 2 and the cells of section 4 that define functions and the
    class (cheap); the training cells run in each test."""
    folder = data_folder(tmp_path_factory, "reexec", paths.source_notebook(MAIN).parent, ("digitz.npz",))
    ns = NB.namespace(folder, ORDER[:ORDER.index("r2_gradient") + 1])
    ns["nb_hidden"] = 100  # set by the Q4.2 cell, which runs in its own tests
    return NB.namespace(folder, ("r4_pred2", "r4_mlp_identite", "r4_mlp_classe"), ns=ns)


def _trained(base, gid, source=None, before=()):
    ns = dict(base)
    for g in before:
        NB.run(ns, g)
    NB.run(ns, gid, source)
    return ns


# ------------------------------------------------------------------ honest loops pass
@pytest.mark.parametrize("gid, check", [("r3_descente", s3.check_q3_descente), ("r3_sgd", s3.check_q3_sgd),
                                        ("r4_mlp_manuel", s4.check_q4_mlp_manuel),
                                        ("r4_mlp_apprentissage", s4.check_q4_mlp_apprentissage),
                                        ("r5_minibatch", s5.check_q5_minibatch)])
def test_the_reference_passes_with_its_cells_rerun(base, gid, check):
    before = ("r3_descente",) if gid == "r3_sgd" else ()
    ns = _trained(base, gid, before=before)
    assert judge(check, ns, dict(CELLS)) is None


TRAINING = {"r3_descente": s3.check_q3_descente, "r3_sgd": s3.check_q3_sgd, "r4_mlp_manuel": s4.check_q4_mlp_manuel,
            "r4_mlp_apprentissage": s4.check_q4_mlp_apprentissage, "r5_minibatch": s5.check_q5_minibatch}
#: cells the training loops call into: a variant of one of them is judged on the loops that use it
USED_BY = {"r2_pred": ("r3_descente", "r3_sgd"), "r2_cout": tuple(TRAINING), "r4_pred2": ("r4_mlp_manuel",),
           "r4_mlp_classe": ("r4_mlp_apprentissage", "r5_minibatch")}


def _catalogue_variants():
    """The catalogue's valid variants that change the training cells or what they call (and no
    structure): each must pass every re-run."""
    from tpkit.assignments.tp_reseaux_neurones.variants import VARIANTS
    return [v for v in VARIANTS if not v.edits and v.changes and set(v.changes) <= set(TRAINING) | set(USED_BY)]


@pytest.mark.slow
@pytest.mark.parametrize("variant", _catalogue_variants(), ids=lambda v: v.name)
def test_catalogue_variants_pass_their_reruns(base, variant):
    sources = NB.changed(variant.changes)
    judged = [g for g in TRAINING if g in variant.changes or any(g in USED_BY[u] for u in variant.changes if u in USED_BY)]
    ns = dict(base)
    for gid in ("r2_pred", "r2_cout", "r4_pred2", "r4_mlp_classe"):
        if gid in variant.changes:
            NB.run(ns, gid, sources[gid])
    for gid in TRAINING:
        if gid in judged or (gid == "r3_descente" and "r3_sgd" in judged):
            NB.run(ns, gid, sources[gid])
            if gid in judged:
                assert judge(TRAINING[gid], ns, sources) is None, gid


@pytest.mark.slow
@pytest.mark.parametrize("secret", [SECRET + 7919 * 7, SECRET + 7919 * 9])
def test_clamped_cost_keeps_its_points_where_a_replay_parted(base, secret):
    """log(clamp(Ŷ, 1e-16)) is a valid cost; under these secrets the grader's replay of the whole MLP
    training with log(Ŷ + 1e-16) parted from it (the costs differed by more than the tolerance: Q4.10
    lost). The audited steps keep it (and Q5's, whose replay parted at 128 examples under SECRET)."""
    variant = next(v for v in _catalogue_variants() if v.name == "g_cout_clamp")
    sources = NB.changed(variant.changes)
    ns = dict(base)
    NB.run(ns, "r2_cout", sources["r2_cout"])
    for gid in ("r4_mlp_apprentissage", "r5_minibatch"):
        NB.run(ns, gid, sources[gid])
        try:
            TRAINING[gid](Witness(LocalTransport(ns), salt=secret, cells=sources))
        except CheckFailed as exc:
            pytest.fail(f"{gid}: {exc}")


# ------------------------------------------------------------------ attacks
def _attack(base, gid, check, source, before=(), setup=None):
    """The attack passes in untrusted mode and fails in trusted mode with the re-run's message."""
    ns = dict(base)
    if setup:
        setup(ns)
    for g in before:
        NB.run(ns, g)
    NB.run(ns, gid, source)
    return attack(check, ns, CELLS, gid, source)


def test_harvested_repair_values_lose_q3_6(base):
    """Q3.1/3.2 left blank: its repair pushes the reference W, B, lst_loss; Q3.6 takes them, no loop."""
    def blank_descent(ns):
        s3.repair_q3_descente(Witness(LocalTransport(ns)))
    source = NB.edit("r3_sgd", ("W = th.tensor(np.random.randn(d, p) * 0.01, requires_grad=True)\n"
                                 "B = th.zeros(1, p, dtype=th.float64, requires_grad=True)\n", ""),
                      ("for i in range(niter):\n", "lst_loss_sgd = list(lst_loss)\nfor i in range(0):\n"))
    message = _attack(base, "r3_sgd", s3.check_q3_sgd, source, setup=blank_descent)
    assert "aucun coût à partir de `W`" in message


def test_memorised_values_lose_q3_1(base):
    """A cell that trains once, then hands back what it memorised (no loop on the data it is given)."""
    source = ("if '_memoire' not in globals():\n" + "\n".join("    " + line for line in CELLS["r3_descente"].split("\n"))
              + "\n    _memoire = (list(lst_loss), W.detach().clone(), B.detach().clone())\n"
              "lst_loss = list(_memoire[0])\nW = _memoire[1].clone().requires_grad_(True)\n"
              "B = _memoire[2].clone().requires_grad_(True)\n")
    _attack(base, "r3_descente", s3.check_q3_descente, source)


def test_a_loop_that_does_not_run_again_loses_q4_10(base):
    source = ("if '_appris' in globals():\n    mlp, lst_loss_mlp, optimiseur_mlp = _appris\nelse:\n"
              + "\n".join("    " + line for line in CELLS["r4_mlp_apprentissage"].split("\n"))
              + "\n    _appris = (mlp, lst_loss_mlp, optimiseur_mlp)\n")
    message = _attack(base, "r4_mlp_apprentissage", s4.check_q4_mlp_apprentissage, source)
    assert "n'a jamais été appelé" in message


def test_minibatches_from_the_test_set_lose_q5(base):
    source = NB.edit("r5_minibatch", ("idx = th.randint(n, (mb,))", "idx = th.randint(len(Xt), (mb,))"),
                      ("cout(Y[idx], mlp_mb(X[idx]))", "cout(Yt[idx], mlp_mb(Xt[idx]))"))
    message = _attack(base, "r5_minibatch", s5.check_q5_minibatch, source)
    assert "ensemble de test Xt" in message


def test_a_fixed_subset_loses_q5(base):
    source = NB.edit("r5_minibatch", ("idx = th.randint(n, (mb,))", "idx = th.randint(mb, (mb,))"))
    message = _attack(base, "r5_minibatch", s5.check_q5_minibatch, source)
    assert "exemples différents" in message


def test_a_hard_coded_size_fails_in_the_rerun_only(base):
    """n written as 1050: right on the notebook's data, not on the grader's (the question says so)."""
    source = NB.edit("r5_minibatch", ("idx = th.randint(n, (mb,))", "idx = th.randint(1050, (mb,))"))
    message = _attack(base, "r5_minibatch", s5.check_q5_minibatch, source)
    assert "IndexError" in message


def test_memorised_minibatch_costs_lose_q5(base):
    """The loop trains, but the costs it reports are those of the notebook's own run (memorised):
    the audited steps' costs are not those of their minibatches."""
    source = NB.edit("r5_minibatch", ("lst_loss_mb.append(loss.item())",
                                       "lst_loss_mb.append(_couts_mb[i] if '_couts_mb' in globals() else loss.item())"))
    source += "\n_couts_mb = list(lst_loss_mb)\n"
    message = _attack(base, "r5_minibatch", s5.check_q5_minibatch, source)
    assert "ne correspond pas" in message


def _audit(base, source):
    """The minibatch audit alone (the checks of the notebook's own run may fail first)."""
    ns = _trained(base, "r5_minibatch", source)
    try:
        reexec.judge_minibatch(Witness(LocalTransport(ns), salt=SECRET, cells=dict(CELLS, r5_minibatch=source)),
                               "r5_minibatch", 75, 1, 20)
    except CheckFailed as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("old, new", [("optimiseur_mb.zero_grad()", "pass"),  # gradients accumulated
                                      ("lr=step)", "lr=step / 2)")])         # another step
def test_a_wrong_step_fails_the_audit(base, old, new):
    message = _audit(base, NB.edit("r5_minibatch", (old, new)))
    assert message is not None and "pas de gradient attendu" in message, message


def test_the_audit_points_come_from_the_secret():
    class Ns:
        salt = SECRET
    points = reexec.audit_points(Ns, 75)
    assert points[0] == 0 and len(points) == reexec.AUDITED + 1 and max(points) < reexec.MB_MIN_ITER - 1
    assert max(reexec.audit_points(Ns, 74, 200)) < 199
    Ns.salt = SECRET + 1
    assert reexec.audit_points(Ns, 75) != points


# ------------------------------------------------------------------ the re-run leaves no trace
def test_the_rerun_puts_the_namespace_back(base):
    ns = _trained(base, "r3_descente")
    names, W, losses = set(ns), ns["W"].detach().clone(), list(ns["lst_loss"])
    np.random.seed(5)
    torch.manual_seed(5)
    random.seed(5)
    states = (np.random.get_state()[1].copy(), torch.get_rng_state().clone(), random.getstate())
    seeders = (np.random.seed, torch.manual_seed)
    witness = Witness(LocalTransport(ns), salt=SECRET, cells=dict(CELLS))
    st = reexec.draw_state(witness, 71)
    run = reexec.rerun(witness, "r3_descente", st, keep=("lst_loss", "W"), initial=("W",))
    assert run.values["lst_loss"] != losses and run.initial["W"].shape == W.shape
    assert set(ns) == names and torch.equal(ns["W"].detach(), W) and ns["lst_loss"] == losses
    assert ns["X"].shape[0] == 1050 and ns["n"] == 1050
    assert np.array_equal(np.random.get_state()[1], states[0]) and torch.equal(torch.get_rng_state(), states[1])
    assert random.getstate() == states[2]
    assert (np.random.seed, torch.manual_seed) == seeders


def test_the_rerun_seeds_from_the_secret(base):
    """Same cell, two secrets: other initial values; the same secret: the same ones."""
    ns = _trained(base, "r3_descente")

    def initial_w(salt):
        witness = Witness(LocalTransport(ns), salt=salt, cells=dict(CELLS))
        return reexec.rerun(witness, "r3_descente", reexec.draw_state(witness, 71), keep=(),
                            initial=("W",)).initial["W"]

    a, b = initial_w(SECRET), initial_w(SECRET + 1)
    assert torch.equal(a, initial_w(SECRET)) and not torch.equal(a, b)
    assert float(a.std()) == pytest.approx(0.01, rel=0.2)


def test_untrusted_mode_reruns_nothing(base):
    assert not reexec.active(Witness(LocalTransport({})))
    assert reexec.active(Witness(LocalTransport({}), cells={"r3_descente": "pass"}))
