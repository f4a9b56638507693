"""Spread over seeds of what the checks of `tp_soyez_curieux` measure, to set their thresholds:
`python -m tpkit.assignments.tp_soyez_curieux.calibration [--seeds 30]` prints a Markdown table (docs/thresholds.md).

Each quantity is measured on the configuration its check uses, with the reference MLP, entrainer and
CNN (`curieux_ref`), one torch thread. The CNN's accuracy that decides points is measured on the hidden
evaluation set (data/hidden/digitz.npz), as the check does; "CNN shipped test accuracy" is the same model
on the shipped test set `Xt` (what the student's `taux_test_cnn` must match), for comparison.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from tpkit.assignments.tp_soyez_curieux import reference as C
from tpkit.assignments.tp_soyez_curieux import thresholds as T
from tpkit.checks import reference as ref


def _rises(losses) -> float:
    return sum(b > a for a, b in zip(losses, losses[1:])) / (len(losses) - 1)


def run_seed(seed: int) -> dict:
    defs, R, D = C.definitions(), ref.tensors(), ref.data()
    MLP, entrainer, CNN = defs["MLP"], defs["entrainer"], defs["CNN"]
    X, Y, Xt = R["X"], R["Y"], R["Xt"]
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    out = {}
    # q6_neurones / q6_couches: the best train loss of the networks the check asks for, 15 iterations
    def loss_after(h, depth):
        m = MLP(D["d"], h, ref.P, depth)
        entrainer(m, X, Y, 15, C.STEP)
        with torch.no_grad():
            return float(ref.cout(Y, m(X)))

    draw = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=g))  # noqa: E731
    out["q6_neurones: best train loss"] = (min(loss_after(draw(8, 16), 2), loss_after(draw(25, 40), 2)),
                                           T.TRAIN_LOSS_MAX, "below")
    out["q6_couches: best train loss"] = (min(loss_after(30, 1), loss_after(30, 2)), T.TRAIN_LOSS_MAX, "below")
    # q6_entrainer: mb = 4 on 40 random examples, 40 iterations
    Xs = torch.randn(40, 5, generator=g, dtype=torch.float64)
    Ys = torch.eye(3, dtype=torch.float64)[torch.randint(0, 3, (40,), generator=g)]
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3),
                              torch.nn.Softmax(dim=1)).double()
    out["entrainer mb=4: share of rises"] = (_rises(entrainer(net, Xs, Ys, 40, 0.3, 4)),
                                             T.MB_MIN_RISE_SHARE, "above")
    # q6_minibatch: mb = 5, 30 iterations
    out["experience_minibatch mb=5: share of rises"] = (
        _rises(entrainer(MLP(D["d"], 30, ref.P, 2), X, Y, 30, C.STEP, 5)), T.MB_MIN_RISE_SHARE, "above")
    # q6_cnn_apprentissage: the notebook's recipe
    t0 = time.perf_counter()
    cnn = CNN()
    entrainer(cnn, X.reshape(-1, 1, 28, 28), Y, C.CNN_NITER, C.CNN_STEP, C.CNN_MB)
    with torch.no_grad():
        out["CNN test accuracy (hidden set)"] = (
            ref.accuracy(cnn(ref.hidden_tensor().reshape(-1, 1, 28, 28)), ref.hidden()["yh"]),
            T.CNN_TEST_ACC_MIN, "above")
        out["CNN shipped test accuracy"] = (ref.accuracy(cnn(Xt.reshape(-1, 1, 28, 28)), D["yt"]), None, "")
    out["CNN training seconds"] = (time.perf_counter() - t0, None, "")
    return out


def table(seeds) -> str:
    runs = [run_seed(s) for s in seeds]
    lines = ["| quantity | min | median | max | threshold | margin |", "|---|---|---|---|---|---|"]
    for key, (_, threshold, side) in runs[0].items():
        values = [r[key][0] for r in runs]
        lo, med, hi = min(values), statistics.median(values), max(values)
        margin = "" if threshold is None else f"{(lo - threshold) if side == 'above' else (threshold - hi):.3f}"
        lines.append(f"| {key} | {lo:.3f} | {med:.3f} | {hi:.3f} | "
                     f"{'' if threshold is None else ('≥ ' if side == 'above' else '< ') + str(threshold)} | {margin} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m tpkit.assignments.tp_soyez_curieux.calibration", description=__doc__)
    p.add_argument("--seeds", type=int, default=30)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    text = table(range(args.seeds))
    print(f"{args.seeds} seeds, 1 torch thread, {time.time() - t0:.0f} s\n\n{text}")


if __name__ == "__main__":
    main()
