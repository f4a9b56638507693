"""Spread of assignment 2's results (`tp_pima_jouet`) over many seeds, behind its thresholds.LIMITS:
`python -m tpkit.assignments.tp_pima_jouet.calibration [--seeds 30] [--out FILE]`.

Trains, for each seed, the notebook's recipes (its own settings) and prints min / median / max of
each measured quantity, the threshold and the margin (docs/thresholds-pima-jouet.md). The accuracies
that decide points (`*_test_acc`) are measured on the hidden evaluation sets (data/hidden/pima.npz,
data/hidden/toy2d.npz), as the checks do; `*_shipped_acc`: the same models on the shipped test sets.
"""
from __future__ import annotations

import argparse
import time

import torch

from tpkit.assignments.tp_pima_jouet import reference as pj
from tpkit.assignments.tp_pima_jouet import thresholds as T
from tpkit.checks import reference as ref
from tpkit.checks.thresholds import report as table


def _mlp(d, h, p):
    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = torch.nn.Linear(d, h).double()
            self.c2 = torch.nn.Linear(h, p).double()

        def forward(self, x):
            return ref.mlp_forward(x, self.c1, self.c2)
    return MLP()


def run_seed(seed: int) -> dict:
    P, Tt = pj.pima_tensors(), pj.data()
    Ph, yph = pj.pima_hidden()
    xth, yth = pj.hidden_data()["toy"]
    Th = torch.tensor(xth)
    out = {}

    def accuracies(key, forward, Xt, yt, Xh, yh):
        with torch.no_grad():
            out[key] = ref.accuracy(forward(Xh), yh)
            out[key.replace("_test_acc", "_shipped_acc")] = ref.accuracy(forward(Xt), yt)

    W, B = ref.statement_init(seed, 7, 2)
    losses, W, B = ref.gradient_descent(P["X"], P["Y"], W, B, step=pj.PIMA_STEP, niter=pj.PIMA_NITER)
    out["pima_lin_final_loss"] = losses[-1]
    accuracies("pima_lin_test_acc", lambda x: ref.pred(x, W, B), P["Xt"], Tt["pima"]["yt"], Ph, yph)
    torch.manual_seed(seed)
    mlp = _mlp(7, pj.NB_HIDDEN, 2)
    ref.train(list(mlp.parameters()), mlp, P["X"], P["Y"], 200, step=0.1)
    accuracies("pima_mlp_test_acc", mlp, P["Xt"], Tt["pima"]["yt"], Ph, yph)
    torch.manual_seed(seed)
    mlp = _mlp(7, pj.NB_HIDDEN, 2)
    gen = torch.Generator().manual_seed(seed)
    losses = ref.train(list(mlp.parameters()), mlp, P["X"], P["Y"], 1000, step=0.05, batch=pj.MB, gen=gen)
    out["pima_mb_rise_share"] = sum(b > a for a, b in zip(losses, losses[1:])) / (len(losses) - 1)
    accuracies("pima_mb_test_acc", mlp, P["Xt"], Tt["pima"]["yt"], Ph, yph)
    D = Tt["toy"]
    X, Y, Xt = torch.tensor(D["x"]), torch.tensor(pj.one_hot(D["y"], 3)), torch.tensor(D["xt"])
    W, B = ref.statement_init(seed, 2, 3)
    _, W, B = ref.gradient_descent(X, Y, W, B, step=1.0, niter=200)
    accuracies("toy_lin_test_acc", lambda x: ref.pred(x, W, B), Xt, D["yt"], Th, yth)
    torch.manual_seed(seed)
    mlp = _mlp(2, 100, 3)
    ref.train(list(mlp.parameters()), mlp, X, Y, 500, step=1.0)
    accuracies("toy_mlp_test_acc", mlp, Xt, D["yt"], Th, yth)
    return out


MEASURED = ("pima_lin_final_loss", "pima_lin_test_acc", "pima_lin_shipped_acc", "pima_mlp_test_acc",
            "pima_mlp_shipped_acc", "pima_mb_rise_share", "pima_mb_test_acc", "pima_mb_shipped_acc",
            "toy_lin_test_acc", "toy_lin_shipped_acc", "toy_mlp_test_acc", "toy_mlp_shipped_acc")
def report(rows: list[dict]) -> str:
    """The calibration table of every assignment, with this one's quantities and thresholds."""
    return table(rows, T.LIMITS, MEASURED)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--out", help="also append the table to this markdown file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    rows = [run_seed(s) for s in range(args.seeds)]
    text = f"{args.seeds} seeds, 1 torch thread, {time.time() - t0:.0f} s\n\n{report(rows)}\n"
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(f"\n### `--seeds {args.seeds}`\n\n{text}")


if __name__ == "__main__":
    main()
