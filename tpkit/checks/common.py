"""Helpers of the hidden checks shared by several sections and assignments (inputs drawn from the
course's secret, the student's functions called and diagnosed, optimisers found and checked)."""
from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

from tpkit.checks import reference as ref
from tpkit.checks.tools import (CheckFailed, all_finite, call, close, fail, get, require_finite, require_number,
                                student_call, within)

LOG3 = math.log(3)


class Draw:
    """A check's source of random inputs: numpy's PCG64 (128 bits of state) seeded through a
    SeedSequence with all 256 bits of a digest of the course secret. torch's generators take a 64-bit
    seed, and a few values leaked out of a 32-bit seed pin it offline; the tensors are drawn here, in
    float64 / int64, and handed to torch."""

    def __init__(self, entropy: int):
        self.entropy = entropy
        self.rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))

    def rand(self, *shape) -> torch.Tensor:
        return torch.from_numpy(self.rng.random(shape))

    def randn(self, *shape) -> torch.Tensor:
        return torch.from_numpy(self.rng.standard_normal(shape))

    def randint(self, low: int, high: int, shape) -> torch.Tensor:
        """Integers in [low, high)."""
        return torch.from_numpy(self.rng.integers(low, high, size=shape, dtype=np.int64))

    def integer(self, low: int, high: int) -> int:
        """One integer in [low, high]."""
        return int(self.rng.integers(low, high + 1))

    def randperm(self, n: int) -> torch.Tensor:
        return torch.from_numpy(self.rng.permutation(n).astype(np.int64))


def gen(ns, key, index: int = 0) -> Draw:
    """The inputs of draw `key` (a number unique across the checks), call `index`, for the course
    secret `ns.salt` (0 in untrusted mode: fixed inputs). Deterministic for a given secret, so a
    submission graded twice is graded on the same inputs; without the secret nobody can anticipate
    them: every bit of it goes through blake2b into the generator's 256-bit seed."""
    digest = hashlib.blake2b(f"{int(ns.salt)}/{key}/{int(index)}".encode("ascii"), digest_size=32,
                             person=b"tpkit-entrees").digest()
    return Draw(int.from_bytes(digest, "big"))


def draws(ns, key, count: int = 2) -> list:
    """`count` independent draws of `key`: a check calls the student's function on each and compares
    every answer with the reference, so a function that answers the grader differently gains nothing
    from recognising one input."""
    return [gen(ns, key, index) for index in range(count)]


def is_module(value) -> bool:
    return getattr(value, "is_module", False) is True


def linear_loss(ns, W, B) -> float:
    R = ref.tensors()
    with torch.no_grad():
        return float(ref.cout(R["Y"], ref.pred(R["X"], W.detach().to(torch.float64),
                                               B.detach().to(torch.float64))))


def softmax_diagnosis(name: str, out: torch.Tensor, good: torch.Tensor):
    """Explain in French how a softmax output differs from the expected one."""
    if not all_finite(out):
        fail(f"`{name}` renvoie des NaN ou inf pour de grandes valeurs de XW + B : softmax "
             "écrite à la main instable numériquement (soustrayez le max de chaque ligne "
             "ou utilisez th.softmax).")
    rows = out.sum(dim=1)
    if not close(rows, torch.ones_like(rows), rtol=0, atol=1e-8):
        cols = out.sum(dim=0)
        if close(cols, torch.ones_like(cols), rtol=0, atol=1e-8):
            fail(f"les lignes de la sortie de `{name}` ne somment pas à 1 (ce sont les "
                 "colonnes) : softmax appliquée sur le mauvais axe ? (dim=1 pour les lignes)")
        fail(f"les lignes de la sortie de `{name}` ne somment pas à 1 : "
             "la softmax est-elle appliquée (et normalisée) ?")
    if bool((out < 0).any()):
        fail(f"la sortie de `{name}` contient des valeurs négatives : ce ne sont pas des probabilités.")


def student_output(fn_name, fn, args, shape):
    out = call(fn_name, fn, *args)
    if not isinstance(out, torch.Tensor):
        fail(f"`{fn_name}` doit renvoyer un tenseur torch (reçu : {type(out).__name__}).")
    if tuple(out.shape) != tuple(shape):
        fail(f"`{fn_name}` renvoie une sortie de taille {tuple(out.shape)} au lieu de "
             f"{tuple(shape)} : utilise-t-elle bien ses arguments (et pas des variables globales) ?")
    return out


def grad_flows(fn_name, out, leaves):
    if out.grad_fn is None or not all(getattr(leaf, "requires_grad", False) for leaf in leaves):
        fail(f"la sortie de `{fn_name}` n'est pas reliée aux paramètres pour autograd : "
             "n'utilisez ni .detach(), ni .numpy(), ni th.tensor(...) dans la fonction.")


def check_asked_values(ns, names_values):
    for name, value in names_values:
        got = require_number(get(ns, name), name)
        if got != value:
            fail(f"`{name}` vaut {got:g} : gardez {name} = {value:g} pour la version notée "
                 "(expérimentez dans la cellule d'expériences, avec d'autres variables).")


def trained_on_training_data(losses, final, name, what, tolerance):
    """Reported vs recomputed: the cost of the final parameters on the training data must agree with
    the last cost the loop reported (they differ by about one step of the descent). A model trained on
    other data (the test set) reports costs of that data: far from its cost on X, Y. `tolerance`: the
    assignment's consistency threshold, in units of the last step plus 1 % of the last cost."""
    scale = abs(losses[-2] - losses[-1]) + 0.01 * abs(losses[-1])
    if not within(abs(final - losses[-1]), tolerance * scale + 1e-12):
        fail(f"le coût des paramètres appris sur les données d'apprentissage ({final:.4g}) ne correspond "
             f"pas au dernier coût de `{name}` ({losses[-1]:.4g}) : {what} doit être appris sur les "
             "données d'apprentissage X, Y, et la liste doit contenir le coût de chaque itération.")


def check_sgd(opt, step, what):
    """The optimiser the statement asks for: plain th.optim.SGD with lr = step."""
    group = opt.groups[0]["hyper"] if opt.groups else {}
    lr = group.get("lr")
    if len(opt.groups) != 1 or lr != step:
        fail(f"le pas (lr) de l'optimiseur vaut {lr:g} au lieu de step = {step:g}." if isinstance(lr, (int, float))
             else f"l'optimiseur de {what} doit avoir un seul pas lr = step = {step:g}.")
    extras = [k for k in ("momentum", "weight_decay", "nesterov", "maximize") if group.get(k)]
    if extras:
        fail(f"l'optimiseur de {what} utilise {', '.join(extras)} : la descente demandée est "
             f"th.optim.SGD(..., lr=step) sans momentum ni weight_decay.")


def student_rate(ns, name, good):
    value = require_number(get(ns, name), name)
    # rates are multiples of 1/1050 or 1/450: 1e-6 tells every count apart and accepts float32
    if math.isclose(value, good, abs_tol=1e-6) or math.isclose(value, 100 * good, abs_tol=1e-4):
        return
    fail(f"`{name}` vaut {value:.4g} alors que les paramètres appris donnent {good:.4g} : "
         "calculez la prédiction sur les bonnes données, puis np.mean(np.argmax(Ŷ, 1) == étiquettes).")


def find_sgd(ns, params, name_hint):
    ids = {p.witness_id for p in params}
    for opt in ns.optimizers():
        if opt.is_sgd and ids <= opt.param_ids:
            return opt
    fail(f"aucun optimiseur th.optim.SGD ne porte sur {name_hint} : "
         f"créez-le avec th.optim.SGD({name_hint}, lr=step).")


def mlp_test_accuracy(model_or_fn, hidden: bool = False) -> float:
    """Accuracy of a network on the shipped test set `Xt` (what the student's reported rate must
    match), or with `hidden` on the hidden evaluation set (what decides the points: examples the
    student never received, so a model that recognises the shipped images gains nothing)."""
    if hidden:
        X, labels = ref.hidden_tensor(), ref.hidden()["yh"]
    else:
        X, labels = ref.tensors()["Xt"], ref.data()["yt"]
    out = hidden_call("mlp", lambda: model_or_fn(X)) if hidden else \
        student_call("mlp", lambda: _no_grad(model_or_fn, X))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (X.shape[0], ref.P):
        fail("le réseau ne renvoie pas une sortie de taille (nombre d'exemples, p).")
    return ref.accuracy(out.to(torch.float64), labels)


def _no_grad(fn, *args):
    with torch.no_grad():
        return fn(*args)


def hidden_call(fn_name: str, thunk):
    """A student's function run on hidden examples: an error it raises is reported without its
    message (which the function could fill with the examples it was given)."""
    try:
        return student_call(fn_name, lambda: _no_grad(thunk))
    except CheckFailed:
        fail(f"l'appel {fn_name}(...) lève une erreur sur des exemples de test que vous n'avez pas "
             "(le réseau doit accepter n'importe quelles images de taille (n, d)).")


def linear_layers(model):
    info = model.module()
    layers, c1, c2 = info.linears, info.c1, info.c2
    if c1 is not None and c2 is not None:
        return c1, c2
    if len(layers) == 2:
        return layers[0], layers[1]
    fail(f"`MLP` doit contenir deux couches th.nn.Linear (self.c1, self.c2) ; trouvé {len(layers)}.")


def judge_cost(fn, Y, Yhat, suffix: str = ""):
    """The student's `cout(Y, Yhat)` against J = −1/n Σ Y log Ŷ (one number, the right value, linked
    to Ŷ for autograd), naming the usual slip (sign, sum instead of mean, mean over the classes too).
    Shared by the cost questions of several assignments; returns the student's output."""
    n, p = Y.shape
    out = call("cout", fn, Y, Yhat)
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        fail("`cout` doit renvoyer un tenseur contenant un seul nombre (le coût moyen).")
    good = float(ref.cout(Y, Yhat))
    got = float(require_finite(out, "cout(Y, Yhat)").detach().reshape(()))
    if not math.isclose(got, good, rel_tol=1e-8, abs_tol=1e-12):
        if math.isclose(got, -good, rel_tol=1e-6):
            fail("`cout` renvoie l'opposé du coût : il manque le signe moins de J = −1/n Σ Y log Ŷ.")
        if math.isclose(got, n * good, rel_tol=1e-6):
            fail("`cout` renvoie la somme et non la moyenne sur les exemples (facteur 1/n).")
        if math.isclose(got, good / p, rel_tol=1e-6):
            fail("`cout` moyenne aussi sur les classes : sommez sur les classes, moyennez sur les exemples.")
        fail(f"`cout(Y, Yhat)` vaut {got:.6g} au lieu de {good:.6g} pour J = −1/n Σ Y log Ŷ{suffix}.")
    if out.grad_fn is None:
        fail("la sortie de `cout` n'est pas reliée à Ŷ pour autograd : n'utilisez ni .detach() "
             "ni .numpy() dans la fonction.")
    return out
