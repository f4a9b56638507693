"""Measure the spread of the TP's results over many seeds, to set the thresholds of the
hidden checks with margin: `python -m tpkit.assignments.tp_reseaux_neurones.calibration [--seeds 30] [--out FILE]`.

Runs the reference recipe (the solution notebook's own settings) for each seed and prints,
for every measured quantity, min / median / max and the threshold in `thresholds.py`.

The accuracies that decide points (`*_test_acc`) are measured on the hidden evaluation set
(data/hidden/digitz.npz), as the checks measure them; `*_shipped_acc` are the same models on the
shipped test set `Xt`, shown for comparison (no threshold). `--mistakes` also trains the two
minibatch mistakes of issue 23 (minibatches drawn from the test set; always from the first `mb`
examples) and prints their hidden-set accuracy next to the honest runs'.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tpkit.assignments.tp_reseaux_neurones import reference as ref
from tpkit.assignments.tp_reseaux_neurones import thresholds as T
from tpkit.checks.thresholds import report


def run_seed(seed: int, niter_mb: int = 1000) -> dict:
    D, R, H = ref.data(), ref.tensors(), ref.hidden()
    X, Y, Xt, Xh = R["X"], R["Y"], R["Xt"], ref.hidden_tensor()

    def accuracies(key, forward):
        with torch.no_grad():
            out[key] = ref.accuracy(forward(Xh), H["yh"])
            out[key.replace("_test_acc", "_shipped_acc")] = ref.accuracy(forward(Xt), D["yt"])

    out = {}
    W, B = ref.statement_init(seed, D["d"])
    losses, W, B = ref.gradient_descent(X, Y, W, B, ref.STEP, ref.NITER)
    out["gd_init_loss_gap"] = abs(losses[0] - np.log(3))
    out["gd_final_loss"] = losses[-1]
    out["gd_rises"] = sum(b > a + 1e-12 for a, b in zip(losses, losses[1:]))
    accuracies("gd_test_acc", lambda x: ref.pred(x, W, B))
    # two-layer network by hand: W = 0.1 * randn (0.01 leaves some seeds stuck), biases 0
    torch.manual_seed(seed)
    W1, W2 = ref.init_params(seed, (D["d"], ref.NB_HIDDEN), (ref.NB_HIDDEN, ref.P),
                             scale=ref.MLP_INIT_SCALE)
    B1 = torch.zeros(1, ref.NB_HIDDEN, dtype=torch.float64, requires_grad=True)
    B2 = torch.zeros(1, ref.P, dtype=torch.float64, requires_grad=True)
    ref.train([W1, B1, W2, B2], lambda x: ref.pred2(x, W1, B1, W2, B2), X, Y, ref.NITER, ref.STEP)
    accuracies("mlp_manual_test_acc", lambda x: ref.pred2(x, W1, B1, W2, B2))
    out["mlp_manual_W1_std"] = float(W1.std())
    # nn.Module MLP (torch's default initialisation, seeded)
    torch.manual_seed(seed)
    mlp = ref.MLP()
    ref.train(list(mlp.parameters()), mlp, X, Y, ref.NITER, ref.STEP)
    accuracies("mlp_test_acc", mlp)
    # minibatch SGD
    torch.manual_seed(seed)
    mlp = ref.MLP()
    gen = torch.Generator().manual_seed(seed)
    losses = ref.train(list(mlp.parameters()), mlp, X, Y, niter_mb, ref.STEP, batch=ref.MB, gen=gen)
    out["mb_rise_share"] = sum(b > a for a, b in zip(losses, losses[1:])) / (len(losses) - 1)
    accuracies("mb_test_acc", mlp)
    with torch.no_grad():
        out["mb_train_acc"] = ref.accuracy(mlp(X), D["y"])
    return out


def mistakes_seed(seed: int, niter_mb: int = 1000) -> dict:
    """The two minibatch mistakes the hidden set is asked to separate (issue 23): the reference loop
    with its minibatches drawn from the test set (Xt, Yt), or always from the first `mb` examples
    (``th.randint(mb, (mb,))``). Hidden-set and training-set accuracy of the final model."""
    D, R, H = ref.data(), ref.tensors(), ref.hidden()
    Xh, out = ref.hidden_tensor(), {}
    for name, X, Y, rows in (("mb_from_test", R["Xt"], R["Yt"], None),
                             ("mb_first_rows", R["X"], R["Y"], ref.MB)):
        torch.manual_seed(seed)
        mlp = ref.MLP()
        gen = torch.Generator().manual_seed(seed)
        Xs, Ys = (X, Y) if rows is None else (X[:rows], Y[:rows])   # randint(mb, ...) = first mb rows
        ref.train(list(mlp.parameters()), mlp, Xs, Ys, niter_mb, ref.STEP, batch=ref.MB, gen=gen)
        with torch.no_grad():
            out[f"{name}: hidden acc"] = ref.accuracy(mlp(Xh), H["yh"])
            out[f"{name}: train acc"] = ref.accuracy(mlp(R["X"]), D["y"])
    return out


# What this script measures, compared with the one table of thresholds (thresholds.LIMITS).
MEASURED = ("gd_init_loss_gap", "gd_final_loss", "gd_rises", "gd_test_acc", "gd_shipped_acc",
            "mlp_manual_test_acc", "mlp_manual_shipped_acc", "mlp_manual_W1_std", "mlp_test_acc",
            "mlp_shipped_acc", "mb_rise_share", "mb_test_acc", "mb_shipped_acc", "mb_train_acc")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--niter-mb", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="also append the table to this markdown file")
    parser.add_argument("--mistakes", action="store_true",
                        help="also measure the minibatch mistakes (test-set batches, first mb rows)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    rows = [run_seed(s, args.niter_mb) for s in range(args.seeds)]
    table = report(rows, T.LIMITS, MEASURED)
    if args.mistakes:
        bad = [mistakes_seed(s, args.niter_mb) for s in range(args.seeds)]
        table += "\n\nMinibatch mistakes (same seeds; threshold of mb_test_acc):\n\n" + \
            report(bad, {k: T.LIMITS["mb_test_acc"] for k in bad[0] if "hidden" in k}, tuple(bad[0]))
    text = (f"{args.seeds} seeds, {torch.get_num_threads()} torch thread(s), niter_mb = "
            f"{args.niter_mb}, {time.time() - t0:.0f} s\n\n{table}\n")
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(f"\n### `--seeds {args.seeds} --threads {args.threads} --niter-mb {args.niter_mb}`\n\n{text}")


if __name__ == "__main__":
    main()
