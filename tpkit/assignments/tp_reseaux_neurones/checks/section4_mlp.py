"""Hidden checks of section 4: MLP of tp_reseaux_neurones (one check, and its repair, per
graded question)."""
from __future__ import annotations


import torch

from tpkit.assignments.tp_reseaux_neurones import imposed, reexec
from tpkit.assignments.tp_reseaux_neurones import reference as ref
from tpkit.checks import repairs_code
from tpkit.assignments.tp_reseaux_neurones import thresholds as T
from tpkit.checks.tools import (as_float64, at_least, between, call, close, fail, finite_tensor, get, number_list, require_shape,
                                student_call, within)
from tpkit.checks.common import (check_asked_values, check_sgd, draws, find_sgd, grad_flows, is_module, linear_layers, mlp_test_accuracy, softmax_diagnosis, student_output, student_rate, trained_on_training_data)
from tpkit.checks.registry import check, repair


def _accumulated_gradients(params, opt, grads_at) -> bool:
    """After a full-batch training loop with a plain SGD optimizer: True when the parameters'
    `.grad` hold gradients summed over iterations (never zeroed). Accepted: no gradient or zero
    gradients (zeroed at the end), the gradient of the last iteration (zeroed at the top of the loop:
    it is the gradient at θ + lr·grad, the point before the last step), or the gradient at θ."""
    grads = [p.grad for p in params]
    if any(g is None for g in grads) or all(not bool((g != 0).any()) for g in grads):
        return False
    group = opt.groups[0]["hyper"]
    if len(opt.groups) != 1 or any(group.get(k) for k in ("momentum", "weight_decay", "nesterov",
                                                             "maximize")):
        return False  # another update rule than θ -= lr·grad: the last point cannot be rebuilt
    with torch.no_grad():
        G = torch.cat([g.detach().to(torch.float64).reshape(-1) for g in grads])
        now = [p.detach().to(torch.float64) for p in params]
        before = [t + group["lr"] * g.detach().to(torch.float64) for t, g in zip(now, grads)]
    for point in (before, now):
        got = grads_at(point)
        got = torch.cat([(torch.zeros_like(t) if g is None else g.to(torch.float64)).reshape(-1)
                         for g, t in zip(got, point)])
        if within(float((got - G).norm()), 1e-6 * float(got.norm() + G.norm())):
            return False
    return True


ACCUMULATED = ("les gradients s'accumulent d'une itération à l'autre dans `{}` : remettez-les à zéro "
               "à chaque itération (méthode .zero_grad() de l'optimiseur).")


@check("q4_pred2")
def check_q4_pred2(ns):
    fn = get(ns, "pred2", "fonction pred2(X, W1, B1, W2, B2)")
    for g in draws(ns, 4):
        _judge_pred2(fn, g)


def _judge_pred2(fn, g):
    X = g.randn(7, 5)
    W1, B1 = g.randn(5, 6).requires_grad_(True), g.randn(1, 6).requires_grad_(True)
    W2, B2 = g.randn(6, 4).requires_grad_(True), g.randn(1, 4).requires_grad_(True)
    out = student_output("pred2", fn, (X, W1, B1, W2, B2), (7, 4))
    grad_flows("pred2", out, (W1, B1, W2, B2))
    good = ref.pred2(X, W1, B1, W2, B2).detach()
    got = as_float64(out, "pred2")
    softmax_diagnosis("pred2", got, good)
    if not close(got, good):
        with torch.no_grad():
            no_relu = torch.softmax((X @ W1 + B1) @ W2 + B2, dim=1)
            relu_last = torch.softmax(torch.relu(torch.relu(X @ W1 + B1) @ W2 + B2), dim=1)
        if close(got, no_relu):
            fail("`pred2` n'applique pas la ReLU après la première couche.")
        if close(got, relu_last):
            fail("`pred2` applique une ReLU après la seconde couche : seule la première "
                 "couche est suivie d'une ReLU, la seconde d'une softmax.")
        fail("`pred2` ne calcule pas softmax(relu(X W1 + B1) W2 + B2).")


@repair("q4_pred2")
def repair_q4_pred2(ns):
    ns.run(repairs_code.PRED2)


@check("q4_mlp_manuel")
def check_q4_mlp_manuel(ns):
    D = ref.data()
    cell = imposed.values()["r4_mlp_manuel"]
    nb_hidden = cell["nb_hidden"]
    check_asked_values(ns, (("nb_hidden", nb_hidden),))
    shapes = dict(W1=(D["d"], nb_hidden), B1=(1, nb_hidden),
                  W2=(nb_hidden, ref.P), B2=(1, ref.P))
    params = []
    for name, shape in shapes.items():
        t = finite_tensor(ns, name)
        require_shape(t, shape, name)
        if not t.requires_grad or not t.is_leaf:
            fail(f"`{name}` doit être créé avec requires_grad=True.")
        params.append(t)
    opt = find_sgd(ns, params, "[W1, B1, W2, B2]")
    check_sgd(opt, cell["step"], "[W1, B1, W2, B2]")
    losses = number_list(get(ns, "lst_loss2"), "lst_loss2", cell["niter"])
    check_asked_values(ns, (("step", cell["step"]), ("niter", cell["niter"])))
    if not losses[-1] < losses[0]:
        fail("`lst_loss2` ne décroît pas : le réseau n'apprend pas.")
    R = ref.tensors()

    def grads_at(point):
        leaves = [t.clone().requires_grad_(True) for t in point]
        return torch.autograd.grad(ref.cout(R["Y"], ref.pred2(R["X"], *leaves)), leaves, allow_unused=True)

    if _accumulated_gradients(params, opt, grads_at):
        fail(ACCUMULATED.format("[W1, B1, W2, B2]"))
    # the initial scale asked (0.1 · randn) shows through training in the spread of W1
    w1_std = float(params[0].detach().to(torch.float64).std())
    if not between(w1_std, T.MLP_W1_STD_MIN, T.MLP_W1_STD_MAX):
        fail(f"après apprentissage, l'écart-type de W1 vaut {w1_std:.3g} : W1 et W2 doivent être "
             f"initialisés comme demandé, np.random.randn(...) * {ref.MLP_INIT_SCALE}.")
    with torch.no_grad():
        final = float(ref.cout(R["Y"], ref.pred2(R["X"], *(as_float64(t, "W") for t in params))))
    trained_on_training_data(losses, final, "lst_loss2", "le réseau", T.CONSISTENCY_MAX)
    W1, B1, W2, B2 = (as_float64(t, "W") for t in params)
    student_rate(ns, "taux_test2", mlp_test_accuracy(lambda x: ref.pred2(x, W1, B1, W2, B2)))
    acc = mlp_test_accuracy(lambda x: ref.pred2(x, W1, B1, W2, B2), hidden=True)
    if not at_least(acc, T.MLP_MANUAL_TEST_ACC_MIN):
        fail(f"taux de bonne reconnaissance sur des exemples de test cachés {acc:.3f} < "
             f"{T.MLP_MANUAL_TEST_ACC_MIN} pour le réseau à deux couches.")
    if reexec.active(ns):  # trusted grading: the loop run again from the grader's state
        reexec.judge_two_layers(ns, "r4_mlp_manuel", 73, cell["step"], cell["niter"])


@repair("q4_mlp_manuel")
def repair_q4_mlp_manuel(ns):
    # the class MLP of Q4.7 is sized with nb_hidden: a changed value must not cost that question too
    ns["nb_hidden"] = ref.NB_HIDDEN


@check("q4_mlp_identite")
def check_q4_mlp_identite(ns):
    cls = get(ns, "MLP", "classe MLP")
    model = call("MLP", cls)
    if not is_module(model):
        fail("`MLP()` doit créer un th.nn.Module (gardez super(MLP, self).__init__()).")
    for g in draws(ns, 5):
        x = g.randn(4, 6)
        out = call("mlp", model, x)
        if not isinstance(out, torch.Tensor) or not close(as_float64(out, "mlp(x)"), x, rtol=0, atol=0):
            fail("`mlp(x)` doit renvoyer exactement son entrée x (forward renvoie x).")
    if not ns.is_instance("mlp", cls):
        fail("créez le réseau avec mlp = MLP().")


@check("q4_mlp_classe")
def check_q4_mlp_classe(ns):
    D = ref.data()
    cls = get(ns, "MLP", "classe MLP")
    model = call("MLP", cls)
    if not is_module(model):
        fail("`MLP()` doit créer un th.nn.Module (gardez super(MLP, self).__init__()).")
    c1, c2 = linear_layers(model)
    if (c1.in_features, c1.out_features) != (D["d"], ref.NB_HIDDEN):
        fail(f"la première couche va de {c1.in_features} à {c1.out_features} neurones "
             f"au lieu de d = {D['d']} → nb_hidden = {ref.NB_HIDDEN}.")
    if (c2.in_features, c2.out_features) != (ref.NB_HIDDEN, ref.P):
        fail(f"la seconde couche va de {c2.in_features} à {c2.out_features} neurones "
             f"au lieu de nb_hidden = {ref.NB_HIDDEN} → p = {ref.P}.")
    if c1.weight.dtype != torch.float64 or c2.weight.dtype != torch.float64:
        fail("les couches doivent être en double précision : ajoutez .double() à leur création.")
    for g in draws(ns, 6):
        x = g.rand(6, D["d"])
        out = call("mlp", model, x)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (6, ref.P):
            fail("`mlp(x)` doit renvoyer un tenseur de taille (nombre d'exemples, p).")
        got = as_float64(out, "mlp(x)")
        with torch.no_grad():
            good = ref.mlp_forward(x, c1.module(), c2.module())
        softmax_diagnosis("forward", got, good)
        if not close(got, good):
            fail("forward ne calcule pas softmax(c2(relu(c1(x)))).")
    if not ns.is_instance("mlp", cls):
        fail("créez le réseau avec mlp = MLP().")


@repair("q4_mlp_classe")
def repair_q4_mlp_classe(ns):
    ns.run(repairs_code.mlp_class(ref.data()["d"], ref.NB_HIDDEN) + "mlp = MLP()\n")


@check("q4_mlp_apprentissage")
def check_q4_mlp_apprentissage(ns):
    cell = imposed.values()["r4_mlp_apprentissage"]
    model = get(ns, "mlp", "réseau appris")
    if not is_module(model):
        fail("`mlp` doit être le réseau MLP() appris.")
    losses = number_list(get(ns, "lst_loss_mlp"), "lst_loss_mlp", cell["niter"])
    check_asked_values(ns, (("step", cell["step"]), ("niter", cell["niter"])))
    if not losses[-1] < losses[0]:
        fail("`lst_loss_mlp` ne décroît pas : le réseau n'apprend pas.")
    named = model.module().params
    params = [p for _, p in named]
    opt = find_sgd(ns, params, "mlp.parameters()")
    check_sgd(opt, cell["step"], "mlp.parameters()")
    R = ref.tensors()

    def grads_at(point):
        # the student's forward at these parameter values, autograd in the kernel, reference cost here
        values = dict(zip([n for n, _ in named], point))
        out, _ = student_call("mlp", lambda: model.functional_call(values, R["X"]))
        leaf = out.detach().to(torch.float64).requires_grad_(True)
        (cot,) = torch.autograd.grad(ref.cout(R["Y"], leaf), (leaf,))
        _, grads = student_call("mlp", lambda: model.functional_call(values, R["X"], cot))
        return grads or [None] * len(point)

    if _accumulated_gradients(params, opt, grads_at):
        fail(ACCUMULATED.format("mlp"))
    out = student_call("mlp", lambda: model(R["X"]))
    if isinstance(out, torch.Tensor) and tuple(out.shape) == (R["X"].shape[0], ref.P):
        final = float(ref.cout(R["Y"], out.detach().to(torch.float64)))
        trained_on_training_data(losses, final, "lst_loss_mlp", "le réseau", T.CONSISTENCY_MAX)
    student_rate(ns, "taux_test_mlp", mlp_test_accuracy(model))
    acc = mlp_test_accuracy(model, hidden=True)
    if not at_least(acc, T.MLP_TEST_ACC_MIN):
        fail(f"taux de bonne reconnaissance sur des exemples de test cachés {acc:.3f} < {T.MLP_TEST_ACC_MIN} "
             "pour le MLP appris.")
    if reexec.active(ns):
        reexec.judge_mlp(ns, "r4_mlp_apprentissage", 74, cell["step"], cell["niter"])
