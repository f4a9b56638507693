"""Valid variants of the worked example's catalogue: correct answers written differently, each must get
every point."""
from tpkit.assignments.tp_exemple.mistakes import SOFTMAX_ANSWER, STEP_LINES, ZERO_GRAD_LINES
from tpkit.catalogue.entries import variant

VARIANTS = [
    variant("softmax_torch", "softmax de torch (th.softmax sur dim=1)",
            {"r1_softmax": [(SOFTMAX_ANSWER, "    return th.softmax(Z, dim=1)")]}),
    variant("cout_clamp", "log(clamp(Ŷ, 1e-16)) au lieu de log(Ŷ + 1e-16), et somme / n",
            {"r1_cout": [("return -th.mean(th.sum(Y * th.log(Yhat + 1e-16), dim=1))",
                          "return -th.sum(Y * th.log(th.clamp(Yhat, min=1e-16))) / Y.shape[0]")]}),
    variant("descente_optim_sgd", "descente écrite avec th.optim.SGD",
            {"r2_descente": [("    lst_loss = []\n", "    lst_loss = []\n    optimiseur = th.optim.SGD([W, B], lr=pas)\n"),
                             ("        loss.backward()\n        with th.no_grad():\n" + STEP_LINES + "\n" + ZERO_GRAD_LINES,
                              "        loss.backward()\n        optimiseur.step()\n        optimiseur.zero_grad()\n")]}),
]
