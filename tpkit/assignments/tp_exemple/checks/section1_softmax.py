"""Section 1 of the worked example: Q1.1 `softmax(Z)` and Q1.2 `cout(Y, Yhat)`, each check with its repair.

A check is registered under the grade id of its test cell (the hidden line `verifier("e1_softmax",
globals())` runs it). It questions the notebook through a :class:`tpkit.witness.Witness` (`ns`): it
calls the student's function on inputs it draws itself from the course secret (`gen`, `draws`: a key
per check), recomputes the expected answer with :mod:`..reference`, and fails with a French message
(`fail`) that names the mistake. When it fails, its repair defines the reference in the notebook, so
that the later questions are graded on a correct definition.
"""
from __future__ import annotations

import torch

from tpkit.assignments.tp_exemple import reference as ref
from tpkit.checks.common import draws, gen, grad_flows, judge_cost, softmax_diagnosis, student_output
from tpkit.checks.registry import check, repair
from tpkit.checks.tools import all_finite, as_float64, close, fail, get

# Keys of the checks' draws: unique across the course's checks (the 9xx are the example's).
KEY_SOFTMAX, KEY_COST = 901, 902


@check("e1_softmax")
def check_e1_softmax(ns):
    fn = get(ns, "softmax", "fonction softmax(Z)")
    for g in draws(ns, KEY_SOFTMAX):
        m, p = g.integer(4, 9), g.integer(2, 6)
        Z = (3 * g.randn(m, p)).requires_grad_(True)
        out = student_output("softmax", fn, (Z,), (m, p))
        grad_flows("softmax", out, (Z,))
        got, good = as_float64(out, "softmax"), ref.softmax(Z).detach()
        softmax_diagnosis("softmax", got, good)
        if not close(got, good):
            if close(got, torch.exp(Z.detach())):
                fail("`softmax(Z)` renvoie exp(Z) sans le diviser par la somme de chaque ligne.")
            fail(f"`softmax(Z)` ne renvoie pas exp(Z) / somme de chaque ligne (essai sur une matrice {m} × {p}).")
    # large scores: exp overflows unless each row's maximum is taken off first
    big = torch.tensor([[1000.0, 0.0, -5.0], [0.0, 1.0, 2.0]], dtype=torch.float64)
    got = as_float64(student_output("softmax", fn, (big,), (2, 3)), "softmax")
    if not close(got, ref.softmax(big)):
        if all_finite(got[0]) and not all_finite(got[1]):
            fail("`softmax(Z)` renvoie NaN pour la ligne [0, 1, 2] quand une autre ligne contient 1000 : "
                 "retirez à chaque ligne son propre maximum (Z.max(dim=1, keepdim=True)), pas celui de "
                 "toute la matrice.")
        if not all_finite(got):
            fail("`softmax(Z)` renvoie NaN ou inf quand Z contient une grande valeur (1000) : exp déborde, "
                 "la softmax est instable numériquement ; retirez d'abord le maximum de chaque ligne.")
        fail("`softmax(Z)` est fausse quand Z contient une grande valeur (1000) : retirez à chaque ligne "
             "son maximum avant th.exp.")


@repair("e1_softmax")
def repair_e1_softmax(ns):
    ns.run(ref.SOFTMAX_CODE)


@check("e1_cout")
def check_e1_cout(ns):
    fn = get(ns, "cout", "fonction cout(Y, Yhat)")
    g = gen(ns, KEY_COST)
    for m, p in ((6, 2), (9, 4)):
        Y = torch.eye(p, dtype=torch.float64)[g.randint(0, p, (m,))]
        Yhat = torch.softmax(g.randn(m, p), dim=1).requires_grad_(True)
        judge_cost(fn, Y, Yhat, suffix=f" (p = {p})")


@repair("e1_cout")
def repair_e1_cout(ns):
    ns.run(ref.COST_CODE)
