"""What every assignment's thresholds share: `Limit` (a threshold, its direction and what calibrated
it), the table an assignment's calibration prints (:func:`report`), and the tolerances of the
re-runs and replays of training cells (:mod:`tpkit.checks.reexec`), which judge any assignment's loop.

Each assignment's own thresholds are its package's ``thresholds.LIMITS`` (:mod:`tpkit.assignments`).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    value: object         # a number, or (low, high) for a range
    kind: str             # "min": a lower bound, "max": an upper bound, "range": both
    calibration: str      # what was measured to set it

    def margin(self, measured: float) -> float:
        """How far a measured value is from failing (negative: the check fails)."""
        if self.kind == "range":
            return min(measured - self.value[0], self.value[1] - measured)
        return measured - self.value if self.kind == "min" else self.value - measured


def report(rows: list[dict], limits: dict, measured) -> str:
    """Markdown table: each measured quantity's spread next to its limit (``limits``: name -> Limit;
    a quantity without one is shown without threshold)."""
    lines = ["| quantity | min | median | max | threshold | margin |", "|---|---|---|---|---|---|"]
    for key in measured:
        vals = [r[key] for r in rows]
        lo, med, hi = min(vals), statistics.median(vals), max(vals)
        limit = limits.get(key)
        if limit is None:
            lines.append(f"| {key} | {lo:.4g} | {med:.4g} | {hi:.4g} | — | — |")
            continue
        margin = min(limit.margin(lo), limit.margin(hi))
        if limit.kind == "range":
            shown = f"in [{limit.value[0]:g}, {limit.value[1]:g}]"
        else:
            shown = f"{'≥' if limit.kind == 'min' else '≤'} {limit.value:g}"
        lines.append(f"| {key} | {lo:.4g} | {med:.4g} | {hi:.4g} | {shown} | {margin:.4g} |")
    return "\n".join(lines)


# Replays of a descent (an extra, never a gate that can be skipped): the largest relative gap between
# two cost trajectories from the same initialisation. Full-batch descent with step = 1 amplifies
# rounding: the cost with clamp(min=1e-16) instead of + 1e-16 drifts up to 2.2e-3 from the reference
# over 200 iterations (float32 costs: 6e-8); B never updated drifts 5.7e-2, step 0.9 0.15, step 0.5 1.6.
REPLAY_RTOL = 1e-2

# Re-runs of a training cell (tpkit.checks.reexec, trusted grading), 128 training examples, the linear
# descent replayed whole from the same start (`python bench/rerun_calibration.py --draws 30`, 2026-12-07):
# the valid variant log(clamp(Ŷ, 1e-16)) drifts from the reference by at most 0.042 in the costs (relative,
# never to less than 1 % of the largest cost) and 0.0041 in the final parameters (relative norm); B never
# updated: costs 0.064-15, parameters 0.066-0.15; step 0.9: 0.12-0.72, 0.038-0.12; gradients accumulated:
# ≥ 0.95, ≥ 63; trained on the 1,050 shipped examples instead: ≥ 1.2, ≥ 0.59. The costs a cell reports
# are judged at RERUN_COST_RTOL (made-up or copied lists are far off), the parameters it ends with at
# REPLAY_RTOL.
RERUN_COST_RTOL = 0.1
# Re-runs of a minibatch loop: the share of the re-run's 128
# training examples the minibatches visit. 500 iterations of 20 draws (10,000 draws) miss one of the 128
# with probability ~1e-32 (th.randint or th.randperm alike); the mb first examples only: 20 / 128.
RERUN_MB_COVERAGE_MIN = 0.9
# One audited SGD step of a minibatch loop or of Q4.10's loop (tpkit.checks.reexec._audit): the relative
# gap between the change of the parameters the loop made and the grader's step from the same parameters
# and examples. Same 30 draws, 7 audited steps of 1,000: log(clamp(Ŷ, 1e-16)) at most 0.012 (cost 3e-4);
# lr = step / 2: 0.5; gradients accumulated: ≥ 46; momentum 0.9: ≥ 2.8.
RERUN_STEP_RTOL = 0.1
