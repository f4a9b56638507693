"""Spread of the worked example's measured quantities over many seeds, next to their thresholds:
`python -m tpkit.assignments.tp_exemple.calibration [--seeds 30]`.

For each seed, the notebook's recipe (softmax regression from zero, pas = 0.5, niter = 100) is trained on
other training points (`generer(60, seed)`) and measured on another hidden set, as the checks measure a
submission; the table gives min / median / max, the limit, and the margin of the worst seed."""
from __future__ import annotations

import argparse
import math
import statistics

import torch

from tpkit.assignments.tp_exemple import reference as ref
from tpkit.assignments.tp_exemple.thresholds import LIMITS
from tpkit.checks.common import Draw


def run_seed(seed: int) -> dict:
    X, y = ref.generate(ref.N_TRAIN, 1000 + seed)
    Y = torch.eye(ref.P, dtype=torch.float64)[y]
    zeros = torch.zeros(2, ref.P, dtype=torch.float64), torch.zeros(1, ref.P, dtype=torch.float64)
    losses, W, B = ref.descent(X, Y, *zeros, ref.STEP, ref.NITER)
    with torch.no_grad():
        final = float(ref.cost(Y, ref.softmax(X @ W + B)))
    Xh, yh = ref.hidden_set(Draw(seed))
    return {"init_loss_gap": abs(losses[0] - math.log(ref.P)),
            "final_vs_last_loss": final - losses[-1],
            "hidden_acc": ref.accuracy(W, B, Xh, yh)}


def table(seeds: int) -> str:
    runs = [run_seed(s) for s in range(seeds)]
    lines = ["| quantity | min | median | max | limit | worst margin |", "|---|---|---|---|---|---|"]
    for key, limit in LIMITS.items():
        if key not in runs[0]:
            continue
        values = [r[key] for r in runs]
        worst = min(limit.margin(v) for v in values)
        lines.append(f"| {key} | {min(values):.4g} | {statistics.median(values):.4g} | {max(values):.4g} | "
                     f"{limit.kind} {limit.value} | {worst:.3g} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tpkit.assignments.tp_exemple.calibration")
    parser.add_argument("--seeds", type=int, default=30)
    args = parser.parse_args(argv)
    print(table(args.seeds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
