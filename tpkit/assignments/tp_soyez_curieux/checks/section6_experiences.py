"""Hidden checks of tp_soyez_curieux, section 6: the experiments and the small convolutional network
(see the package's docstring)."""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from tpkit.assignments.tp_soyez_curieux import reference as C
from tpkit.assignments.tp_soyez_curieux import thresholds as T
from tpkit.assignments.tp_soyez_curieux import reexec as curieux_reexec
from tpkit.checks import reexec
from tpkit.checks import reference as ref
from tpkit.checks.common import gen as _gen, is_module as _is_module, softmax_diagnosis as _softmax_diagnosis
from tpkit.checks.common import hidden_call as _hidden_call, student_rate as _student_rate
from tpkit.checks.registry import check, repair
from tpkit.checks.tools import (as_float64, at_least, between, call, close, fail, get, number_list, student_call,
                                under, within)

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


def _draw(g, low: int, high: int) -> int:
    return g.integer(low, high)


def _pair(value, name: str, what: str, length: int = 2):
    if not isinstance(value, (tuple, list)) or len(value) != length:
        fail(f"`{name}` doit renvoyer {what}.")
    return value


def _model_list(value, name: str, count: int):
    if not isinstance(value, (list, tuple)) or len(value) != count or not all(_is_module(m) for m in value):
        fail(f"`{name}` doit renvoyer la liste des {count} réseaux appris (un par valeur testée).")
    return list(value)


def _forward_ref(linears, activation, x):
    with torch.no_grad():
        for layer in linears[:-1]:
            x = activation(layer.module()(x))
        return torch.softmax(linears[-1].module()(x), dim=1)


def _chain(model, name: str, sizes: list):
    """The Linear layers of `model`, checked to go sizes[0] -> sizes[1] -> ... in float64."""
    linears = model.module().linears
    depth = len(sizes) - 1
    if len(linears) != depth:
        fail(f"{name} contient {len(linears)} couche(s) th.nn.Linear au lieu de nb_couches = {depth}.")
    got = [linears[0].in_features] + [layer.out_features for layer in linears]
    if got != sizes or any(a.out_features != b.in_features for a, b in zip(linears, linears[1:])):
        fail(f"les couches de {name} vont de {' → '.join(map(str, got))} neurones au lieu de "
             f"{' → '.join(map(str, sizes))} (d → nb_hidden → … → p).")
    if any(layer.weight.dtype != torch.float64 for layer in linears):
        fail(f"les couches de {name} doivent être en double précision (.double()).")
    return linears


def _outputs(model, name: str, x, rows: int, p: int) -> torch.Tensor:
    out = call(name, model, x)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (rows, p):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        fail(f"{name} renvoie {shape} au lieu d'un tenseur de taille ({rows}, {p}).")
    return as_float64(out, name)


def _accuracy_and_loss(model, name: str, images: bool = False) -> tuple[float, float]:
    R, D = ref.tensors(), ref.data()
    X, Xt = R["X"], R["Xt"]
    if images:
        X, Xt = X.reshape(-1, 1, 28, 28), Xt.reshape(-1, 1, 28, 28)
    out_t = _outputs(model, name, Xt, Xt.shape[0], ref.P)
    out = _outputs(model, name, X, X.shape[0], ref.P)
    return ref.accuracy(out_t, D["yt"]), float(ref.cout(R["Y"], out))


def _hidden_accuracy(model, name: str, images: bool = False) -> float:
    """Accuracy on the hidden evaluation set (images the student never received): what decides the
    points; an error the network raises there is reported without its message."""
    H = ref.hidden()
    X = ref.hidden_tensor()
    if images:
        X = X.reshape(-1, 1, 28, 28)
    out = _hidden_call(name, lambda: model(X))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (X.shape[0], ref.P):
        fail(f"{name} ne renvoie pas un tenseur de taille ({X.shape[0]}, {ref.P}) sur des images de test cachées.")
    return ref.accuracy(out.to(torch.float64), H["yh"])


def _rate_matches(value, good: float, name: str):
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"`{name}` doit contenir des nombres (taux de bonne reconnaissance en test).")
    if not (math.isclose(value, good, abs_tol=1e-6) or math.isclose(value, 100 * good, abs_tol=1e-4)):
        fail(f"`{name}` donne {value:.4g} alors que le réseau renvoyé a un taux en test de {good:.4g} : "
             "calculez le taux en test de chaque réseau appris (precision(modele, Xt, yt)).")


def _rises(losses) -> float:
    return sum(b > a for a, b in zip(losses, losses[1:])) / max(1, len(losses) - 1)


# ---------------------------------------------------------------- Q6.1: an MLP of any depth
@check("q6_mlp")
def check_q6_mlp(ns):
    cls = get(ns, "MLP", "classe MLP(d, nb_hidden, p, nb_couches, activation)")
    g = _gen(ns, 61)
    configs = [(_draw(g, 4, 7), 4, _draw(g, 5, 9), 3, "tanh"), (_draw(g, 4, 7), 3, 6, 1, "relu"),
               (_draw(g, 4, 7), 3, _draw(g, 5, 9), 2, "sigmoid"), (5, 3, 4, 4, "relu")]
    for d, p, h, depth, act in configs:
        label = f"MLP({d}, {h}, {p}, {depth}, \"{act}\")"
        model = call("MLP", cls, d, h, p, depth, act)
        if not _is_module(model):
            fail("`MLP(...)` doit créer un th.nn.Module (gardez super(MLP, self).__init__()).")
        linears = _chain(model, label, [d] + [h] * (depth - 1) + [p])
        x = g.randn(6, d)
        got = _outputs(model, label, x, 6, p)
        good = _forward_ref(linears, ACTIVATIONS[act], x)
        _softmax_diagnosis("forward", got, good)
        if not close(got, good):
            for other, fn in ACTIVATIONS.items():
                if other != act and depth > 1 and close(got, _forward_ref(linears, fn, x)):
                    fail(f"{label} utilise l'activation {other} au lieu de {act} : "
                         "l'argument activation est-il pris en compte ?")
            fail(f"{label} ne calcule pas softmax(c_L(… {act}(c_1(x)))) : une activation après "
                 "chaque couche cachée, la softmax après la dernière couche seulement.")


@repair("q6_mlp")
def repair_q6_mlp(ns):
    ns.run(C.MLP)


# ---------------------------------------------------------------- Q6.2: the training function
def _kit_model(ns, seed: int, name: str, d: int, h: int, p: int):
    """A small network created in the notebook by the kit (independent of the student's MLP)."""
    ns.run("import torch as _tpkit_torch\n"
           "with _tpkit_torch.random.fork_rng():\n"
           f"    _tpkit_torch.manual_seed({seed})\n"
           f"    {name} = _tpkit_torch.nn.Sequential(_tpkit_torch.nn.Linear({d}, {h}), _tpkit_torch.nn.ReLU(),"
           f" _tpkit_torch.nn.Linear({h}, {p}), _tpkit_torch.nn.Softmax(dim=1)).double()\n")
    return get(ns, name, "réseau de test créé par la vérification")


def _local_copy(params: list, d: int, h: int, p: int) -> torch.nn.Module:
    net = torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.ReLU(), torch.nn.Linear(h, p),
                              torch.nn.Softmax(dim=1)).double()
    net.load_state_dict({n: t.detach().clone() for n, t in params})
    return net


def _reference_losses(net, X, Y, niter, step):
    return ref.train(list(net.parameters()), net, X, Y, niter, step)


@check("q6_entrainer")
def check_q6_entrainer(ns):
    fn = get(ns, "entrainer", "fonction entrainer(modele, X, Y, niter, step, mb=None)")
    g = _gen(ns, 62)
    d, h, p, rows, niter, step = 5, 4, 3, 30, _draw(g, 5, 8), 0.3
    X = g.randn(rows, d)
    Y = torch.eye(p, dtype=torch.float64)[g.randint(0, p, (rows,))]
    model = _kit_model(ns, _draw(g, 0, 10_000), "_tpkit_modele", d, h, p)
    before = model.module().params
    losses = number_list(call("entrainer", fn, model, X, Y, niter, step), "entrainer(...)", niter)
    after = model.module().params
    expected = _reference_losses(_local_copy(before, d, h, p), X, Y, niter, step)
    if all(close(a.to(torch.float64), b.to(torch.float64), rtol=0, atol=0) for (_, a), (_, b) in zip(before, after)):
        fail("`entrainer` ne modifie pas les paramètres du modèle : optimiseur sur modele.parameters(), "
             ".step() à chaque itération.")
    if not within(max(abs(a - b) / abs(b) for a, b in zip(losses, expected)), 1e-8):
        if math.isclose(losses[0], expected[0], rel_tol=1e-8):
            fail("`entrainer` sans minibatch ne suit pas la descente de gradient attendue (pas `step`, "
                 "coût sur tous les exemples, gradients remis à zéro à chaque itération) : "
                 f"coûts {losses[:3]} au lieu de {expected[:3]}.")
        fail(f"`entrainer` renvoie les coûts {losses[:3]}… au lieu de {expected[:3]}… : un coût "
             "cout(Y, modele(X)) par itération, calculé avant le pas de gradient.")
    # minibatches: a fresh random batch at each iteration makes the loss noisy
    X2 = g.randn(40, d)
    Y2 = torch.eye(p, dtype=torch.float64)[g.randint(0, p, (40,))]
    model2 = _kit_model(ns, _draw(g, 0, 10_000), "_tpkit_modele", d, h, p)
    before2 = model2.module().params
    niter2 = 40
    losses2 = number_list(call("entrainer", fn, model2, X2, Y2, niter2, 0.3, 4), "entrainer(..., mb=4)", niter2)
    full = _reference_losses(_local_copy(before2, d, h, p), X2, Y2, niter2, 0.3)
    if not at_least(max(abs(a - b) / abs(b) for a, b in zip(losses2, full)), 1e-6):  # NaN: fails too
        fail("`entrainer(..., mb=4)` calcule le coût sur tous les exemples : tirez mb exemples "
             "(idx = th.randint(n, (mb,))) à chaque itération.")
    if not at_least(_rises(losses2), T.MB_MIN_RISE_SHARE):
        fail("avec mb = 4, le coût renvoyé par `entrainer` n'est pas bruité : tirez un nouveau minibatch "
             "aléatoire à chaque itération, dans la boucle.")
    ns.run("del _tpkit_modele, _tpkit_torch\n")


@repair("q6_entrainer")
def repair_q6_entrainer(ns):
    ns.run(C.ENTRAINER + "try:\n    del _tpkit_modele, _tpkit_torch\nexcept NameError:\n    pass\n")


# ---------------------------------------------------------------- Q6.3-Q6.6: experiments
def _trained(losses: list):
    """One run may stay stuck (a few dead ReLUs); no network that learnt at all is a mistake."""
    if not under(min(losses), T.TRAIN_LOSS_MAX):
        fail(f"aucun des réseaux renvoyés n'a appris : coûts d'apprentissage {['%.3g' % v for v in losses]} "
             f"(≥ {T.TRAIN_LOSS_MAX}) ; entraînez chaque réseau avec entrainer(modele, X, Y, niter, step).")


def _experience(ns, fn_name: str, args, values: list, sizes_of):
    fn = get(ns, fn_name, f"fonction {fn_name}")
    result = _pair(call(fn_name, fn, *args), fn_name,
                   "un couple (taux, modeles) : la liste des taux en test et celle des réseaux appris")
    taux, modeles = result
    if not isinstance(taux, (list, tuple)) or len(taux) != len(values):
        fail(f"`{fn_name}` doit renvoyer un taux en test par valeur testée ({len(values)} ici).")
    modeles = _model_list(modeles, fn_name, len(values))
    D, losses = ref.data(), []
    for value, rate, model in zip(values, taux, modeles):
        _chain(model, f"le réseau appris pour la valeur {value}", sizes_of(value, D))
        acc, loss = _accuracy_and_loss(model, f"le réseau appris pour la valeur {value}")
        _rate_matches(rate, acc, f"{fn_name}(...)[0]")
        losses.append(loss)
    _trained(losses)


@check("q6_neurones")
def check_q6_neurones(ns):
    g = _gen(ns, 63)
    values = [_draw(g, 8, 16), _draw(g, 25, 40)]
    _experience(ns, "experience_neurones", (values, 15), values,
                lambda h, D: [D["d"], h, ref.P])


@check("q6_couches")
def check_q6_couches(ns):
    g = _gen(ns, 64)
    values = [1, 2, _draw(g, 3, 4)]
    hidden = {}

    def sizes(depth, D):
        # the hidden width is the notebook's choice (nb_hidden = 30 asked); read it from the 2-layer net
        return [D["d"]] + [hidden.setdefault("h", 30)] * (depth - 1) + [ref.P]

    fn = get(ns, "experience_couches", "fonction experience_couches")
    result = _pair(call("experience_couches", fn, values, 15), "experience_couches",
                   "un couple (taux, modeles) : la liste des taux en test et celle des réseaux appris")
    modeles = _model_list(result[1], "experience_couches", len(values))
    linears = modeles[1].module().linears
    if len(linears) >= 1:
        hidden["h"] = linears[0].out_features
    taux = result[0]
    if not isinstance(taux, (list, tuple)) or len(taux) != len(values):
        fail(f"`experience_couches` doit renvoyer un taux en test par valeur testée ({len(values)} ici).")
    D, losses = ref.data(), []
    for value, rate, model in zip(values, taux, modeles):
        name = f"le réseau appris pour nb_couches = {value}"
        _chain(model, name, sizes(value, D))
        acc, loss = _accuracy_and_loss(model, name)
        _rate_matches(rate, acc, "experience_couches(...)[0]")
        if value <= 2:  # deeper networks may need more than 15 iterations to start learning
            losses.append(loss)
    _trained(losses)


@check("q6_activations")
def check_q6_activations(ns):
    g = _gen(ns, 65)
    names = ["tanh", "sigmoid", "relu"]
    names = [names[i] for i in g.randperm(3).tolist()]
    depth, niter = 3, _draw(g, 8, 12)
    fn = get(ns, "experience_activations", "fonction experience_activations")
    couts, modeles = _pair(call("experience_activations", fn, names, depth, niter), "experience_activations",
                           "un couple (couts, modeles) : la liste des coûts de chaque apprentissage et "
                           "celle des réseaux appris")
    if not isinstance(couts, (list, tuple)) or len(couts) != len(names):
        fail(f"`experience_activations` doit renvoyer une liste de coûts par activation ({len(names)} ici).")
    modeles = _model_list(modeles, "experience_activations", len(names))
    D = ref.data()
    x = g.rand(5, D["d"])
    for act, losses, model in zip(names, couts, modeles):
        number_list(losses, f"les coûts de l'activation {act}", niter)
        linears = model.module().linears
        if len(linears) != depth:
            fail(f"le réseau appris pour l'activation {act} contient {len(linears)} couche(s) th.nn.Linear "
                 f"au lieu de nb_couches = {depth}.")
        got = _outputs(model, f"le réseau appris pour l'activation {act}", x, 5, ref.P)
        if not close(got, _forward_ref(linears, ACTIVATIONS[act], x)):
            fail(f"le réseau appris pour l'activation \"{act}\" n'utilise pas {act} : créez-le avec "
                 "MLP(d, nb_hidden, p, nb_couches, activation).")


@check("q6_minibatch")
def check_q6_minibatch(ns):
    D = ref.data()
    values, niter = [5, D["n"]], 30
    fn = get(ns, "experience_minibatch", "fonction experience_minibatch")
    t0 = time.perf_counter()
    result = call("experience_minibatch", fn, values, niter)
    wall = time.perf_counter() - t0
    couts, durees = _pair(result, "experience_minibatch",
                          "un couple (couts, durees) : les coûts de chaque apprentissage et leurs durées")
    if not isinstance(couts, (list, tuple)) or len(couts) != len(values) or \
            not isinstance(durees, (list, tuple)) or len(durees) != len(values):
        fail(f"`experience_minibatch` doit renvoyer une liste de coûts et une durée par taille de "
             f"minibatch ({len(values)} ici).")
    curves = [number_list(c, f"les coûts pour mb = {mb}", niter) for mb, c in zip(values, couts)]
    seconds = number_list(list(durees), "durees")
    if min(seconds) <= 0 or not within(sum(seconds), 1.05 * wall + 0.05):
        fail(f"les durées {['%.3g' % s for s in seconds]} s ne sont pas celles des apprentissages "
             f"(l'appel a pris {wall:.3g} s) : mesurez-les avec time.perf_counter() autour de chacun.")
    if not at_least(_rises(curves[0]), T.MB_MIN_RISE_SHARE):
        fail("avec mb = 5 le coût n'est pas bruité : chaque apprentissage doit utiliser sa taille de "
             "minibatch (entrainer(..., mb=mb)), avec un nouveau tirage à chaque itération.")
    if not np.mean(curves[1][-5:]) < np.mean(curves[1][:5]):
        fail(f"avec mb = n = {D['n']} le coût ne décroît pas : le réseau n'apprend pas.")


# ---------------------------------------------------------------- Q6.7-Q6.8: a convolutional network
def _convolutional(ns, model, name: str):
    x = _gen(ns, 66).rand(2, 1, 28, 28)
    names = student_call(name, lambda: ns.trace(model, [x]))
    if not any("conv" in n for n in names):
        fail(f"{name} n'applique aucune convolution (th.nn.Conv2d).")
    if not any("pool" in n for n in names):
        fail(f"{name} n'applique aucune couche de pooling (th.nn.MaxPool2d ou AvgPool2d).")


@check("q6_cnn")
def check_q6_cnn(ns):
    cls = get(ns, "CNN", "classe CNN")
    model = call("CNN", cls)
    if not _is_module(model):
        fail("`CNN()` doit créer un th.nn.Module (gardez super(CNN, self).__init__()).")
    params = model.module().params
    if not params:
        fail("`CNN()` n'a aucun paramètre : créez les couches dans __init__ et stockez-les dans self.")
    if any(t.dtype != torch.float64 for _, t in params):
        fail("les couches de `CNN` doivent être en double précision (.double()), comme les images.")
    count = sum(t.numel() for _, t in params)
    if not between(count, T.CNN_PARAMS_MIN, T.CNN_PARAMS_MAX):
        fail(f"`CNN()` a {count} paramètres : restez entre {T.CNN_PARAMS_MIN} et {T.CNN_PARAMS_MAX} "
             "pour apprendre en quelques secondes.")
    x = _gen(ns, 67).rand(4, 1, 28, 28)
    out = _outputs(model, "cnn(x)", x, 4, ref.P)
    _softmax_diagnosis("forward", out, None)
    _convolutional(ns, model, "`CNN`")


@repair("q6_cnn")
def repair_q6_cnn(ns):
    ns.run(C.CNN)


@check("q6_cnn_apprentissage")
def check_q6_cnn_apprentissage(ns):
    model = get(ns, "cnn", "réseau convolutionnel appris")
    if not _is_module(model):
        fail("`cnn` doit être le réseau CNN() appris.")
    _convolutional(ns, model, "`cnn`")
    acc, _ = _accuracy_and_loss(model, "cnn(Xtimg)", images=True)
    _student_rate(ns, "taux_test_cnn", acc)
    acc = _hidden_accuracy(model, "cnn(Xtimg)", images=True)
    if not at_least(acc, T.CNN_TEST_ACC_MIN):
        fail(f"taux de bonne reconnaissance sur des images de test cachées {acc:.3f} < {T.CNN_TEST_ACC_MIN} pour le réseau "
             f"convolutionnel (niter = {C.CNN_NITER}, step = {C.CNN_STEP}, mb = {C.CNN_MB} attendus).")
    if reexec.active(ns):  # trusted grading: the cell run again on other images, classes renamed
        curieux_reexec.judge_cnn(ns)
