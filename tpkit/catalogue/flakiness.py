"""Flakiness audit: the reference solution of an assignment graded under many global seeds and torch
thread counts must always get full marks; report how close each measured value comes to its threshold.

Every seed call of the notebook (the setup cell's `np.random.seed(0)` / `th.manual_seed(0)` and the
seed lines of §3–§5) is replaced by seed s. Each seed runs in a process of its own, forked from a
server that has already imported torch (tpkit.catalogue.forkrun): a fresh interpreter state per
seed, without paying the interpreter start-up twenty times. The ungraded experiment cells are
emptied as in the catalogue (no check reads them, and every graded training cell re-seeds first).
The other assignments declare their seeded cells in their catalogue module (`SEEDED_CELLS`) and their
probes in `tpkit.catalogue.probes_other`.
"""
from __future__ import annotations

import functools
import importlib
import re
import time
from dataclasses import dataclass, field
from typing import Callable

from tpkit import paths, submissions
from tpkit.catalogue import forkrun, probes, probes_other, runner

SEED_CALL = re.compile(r"\b(np\.random\.seed|th\.manual_seed)\(\s*\d+\s*\)")
SEEDED_CELLS = ("setup", "r3_descente", "r3_sgd", "r4_mlp_manuel", "r4_mlp_apprentissage", "r5_minibatch")


@dataclass(frozen=True)
class Target:
    """What the audit of one assignment needs: its seeded cells and its probes."""
    assignment: str
    seeded_cells: tuple
    probes: str                                # module whose PROBES the fork executor runs
    limits: Callable[[], dict]                 # measure -> (threshold, kind)
    margin: Callable[[str, float], float]      # (measure, value) -> margin (negative: fails)


def target(assignment: str = paths.ASSIGNMENT) -> Target:
    if assignment == paths.ASSIGNMENT:
        return Target(assignment, SEEDED_CELLS, probes.__name__, probes.limits, probes.margin)
    if assignment not in runner.CATALOGUES:
        raise ValueError(f"no flakiness audit for assignment {assignment!r}")
    cells = importlib.import_module(runner.CATALOGUES[assignment]).SEEDED_CELLS
    return Target(assignment, cells, probes_other.__name__, functools.partial(probes_other.limits, assignment),
                  functools.partial(probes_other.margin, assignment))


def seeded(nb, seed: int, cells=SEEDED_CELLS):
    """A copy of `nb` where every seed call uses `seed` (each cell of `cells` must hold one)."""
    nb = submissions.replace_sources(nb, {})
    found = set()
    for cell in nb.cells:
        if cell.cell_type == "code" and SEED_CALL.search(cell.source):
            cell.source = SEED_CALL.sub(lambda m: f"{m.group(1)}({seed})", cell.source)
            found.add(submissions.grade_id(cell))
    missing = set(cells) - found
    if missing:
        raise ValueError(f"no seed line found in {sorted(missing)}")
    return nb


@dataclass
class SeedRun:
    seed: int
    threads: int
    status: str
    seconds: float
    failed: dict                               # qid -> message
    measures: dict = field(default_factory=dict)


@dataclass
class Audit:
    runs: list
    wall: dict = field(default_factory=dict)   # threads -> wall seconds
    target: Target = field(default_factory=target)

    def flaky(self) -> list[SeedRun]:
        return [r for r in self.runs if r.failed or r.status != "ok"]

    def lowest_margins(self) -> dict:
        """measure -> (margin, value, seed, threads): the run closest to failing that check."""
        out = {}
        for r in self.runs:
            for name, value in r.measures.items():
                if name not in self.target.limits():
                    continue
                m = self.target.margin(name, value)
                if name not in out or m < out[name][0]:
                    out[name] = (m, value, r.seed, r.threads)
        return out

    def missing_measures(self) -> list[str]:
        want = set(self.target.limits())
        return [f"seed {r.seed}, {r.threads} thread(s): {sorted(want - set(r.measures))}"
                for r in self.runs if want - set(r.measures)]


def run(seeds, threads: int = 1, workers: int = 2, timeout: int = 300,
        assignment: str = paths.ASSIGNMENT) -> list[SeedRun]:
    t = target(assignment)
    base = runner.base_notebook(assignment=assignment)
    jobs = {f"seed{s}": seeded(base, s, t.seeded_cells) for s in seeds}
    done = forkrun.execute_many(jobs, base=None, workers=workers, threads=threads, timeout=timeout,
                                probes=t.probes, assignment_dir=paths.source_dir(assignment))
    out, pattern = [], runner.ignore_pattern()
    for s in seeds:
        x = done[f"seed{s}"]
        failed = {q: r.message for q, r in runner.score(x.nb, pattern).items() if r.points < r.max_points}
        out.append(SeedRun(s, threads, x.status, x.seconds, failed, x.measures))
    return out


def audit(seeds_1=range(20), seeds_2=range(20), workers: int = 2, assignment: str = paths.ASSIGNMENT) -> Audit:
    """1-thread runs `workers` at a time; 2-thread runs one at a time (two cores each)."""
    runs, wall = [], {}
    for threads, seeds, w in ((1, list(seeds_1), workers), (2, list(seeds_2), max(1, workers // 2))):
        if seeds:
            t0 = time.time()
            runs += run(seeds, threads=threads, workers=w, assignment=assignment)
            wall[threads] = time.time() - t0
    return Audit(runs, wall, target(assignment))


def report_text(a: Audit) -> str:
    by_threads = {}
    for r in a.runs:
        by_threads.setdefault(r.threads, []).append(r)
    lines = [f"assignment {a.target.assignment}"]
    for t, rs in sorted(by_threads.items()):
        full = sum(1 for r in rs if not r.failed and r.status == "ok")
        secs = sorted(r.seconds for r in rs)
        lines.append(f"{t} torch thread(s): {full}/{len(rs)} seeds at full marks "
                     f"(seeds {min(r.seed for r in rs)}–{max(r.seed for r in rs)}); "
                     f"{a.wall.get(t, 0):.0f} s wall, {secs[len(secs) // 2]:.1f} s per seed (median)")
    for r in a.flaky():
        lines.append(f"  FLAKY seed {r.seed}, {r.threads} thread(s) [{r.status}]: {r.failed}")
    lines += ["", "| measured value | threshold | lowest margin | value there | seed, threads |",
              "|---|---|---|---|---|"]
    limits = a.target.limits()
    for name, (m, value, seed, threads) in sorted(a.lowest_margins().items(), key=lambda kv: kv[0]):
        limit, kind = limits[name]
        shown = f"in [{limit[0]:g}, {limit[1]:g}]" if kind == "range" else \
            (f"≥ {limit:g}" if kind == "min" else f"≤ {limit:g}")
        lines.append(f"| {name} | {shown} | {m:.4g} | {value:.4g} | {seed}, {threads} |")
    for miss in a.missing_measures():
        lines.append(f"  missing measures: {miss}")
    return "\n".join(lines)
