"""Flakiness audit: the reference solution of an assignment graded under many global seeds and torch
thread counts must always get full marks; report how close each measured value comes to its threshold.

Every seed call of the notebook (the setup cell's `np.random.seed(0)` / `th.manual_seed(0)` and the
seed lines of §3–§5) is replaced by seed s. Each seed runs in a process of its own, forked from a
server that has already imported torch (tpkit.catalogue.forkrun): a fresh interpreter state per
seed, without paying the interpreter start-up twenty times. The ungraded experiment cells are
emptied as in the catalogue (no check reads them, and every graded training cell re-seeds first).
Each assignment's package declares its seeded cells (``seeded_cells``) and its probes (``probes``:
`PROBES`, `limits()`, `margin()`), :mod:`tpkit.assignments`.

The checks draw their inputs from the course secret: the audit also grades the catalogue (its sample;
all of it with TPKIT_CATALOGUE=full) under `AUDIT_SECRETS` course secrets of 256 bits
(:func:`catalogue_under_secrets`). A mistake that escapes, or a valid variant that loses a point, under
any of them is a defect of the checks, as it would be under the only fixed inputs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Callable

from tpkit import assignments, paths, submissions, vocabulary
from tpkit.catalogue import forkrun, runner, sampling

SEED_CALL = re.compile(r"\b(np\.random\.seed|th\.manual_seed)\(\s*\d+\s*\)")


@dataclass(frozen=True)
class Target:
    """What the audit of one assignment needs: its seeded cells and its probes."""
    assignment: str
    seeded_cells: tuple
    probes: str                                # module whose PROBES the fork executor runs
    limits: Callable[[], dict]                 # measure -> (threshold, kind)
    margin: Callable[[str, float], float]      # (measure, value) -> margin (negative: fails)


def target(assignment: str) -> Target:
    a = assignments.get(assignment)
    probes = a.module("probes")
    return Target(assignment, a.seeded_cells, a.probes, probes.limits, probes.margin)


def seeded(nb, seed: int, cells):
    """A copy of `nb` where every seed call uses `seed` (each cell of `cells` must hold one)."""
    nb = submissions.replace_sources(nb, {})
    found = set()
    for cell in nb.cells:
        if cell.cell_type == "code" and SEED_CALL.search(cell.source):
            cell.source = SEED_CALL.sub(lambda m: f"{m.group(1)}({seed})", cell.source)
            found.add(vocabulary.grade_id(cell))
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
        *, assignment: str) -> list[SeedRun]:
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


def audit(seeds_1=range(20), seeds_2=range(20), workers: int = 2, *, assignment: str) -> Audit:
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


# ------------------------------------------------------------------ the catalogue under many course secrets
AUDIT_SECRETS = 10


def audit_secrets(count: int = AUDIT_SECRETS) -> list[int]:
    """`count` course secrets of 256 bits, the same at every run (a digest of their rank)."""
    return [int.from_bytes(hashlib.blake2b(f"tpkit-audit-secret-{i}".encode("ascii"), digest_size=32).digest(),
                           "big") for i in range(count)]


@dataclass
class SecretRun:
    secret: int
    report: runner.Report                      # the entries as graded under this secret

    @property
    def label(self) -> str:
        return f"{self.secret:064x}"[:12]

    def problems(self) -> list[str]:
        return self.report.problems()


def verdicts(nb) -> dict:
    """{qid: {secret: message or None}} displayed by the checks of an audited notebook."""
    from tpkit.checks import AUDIT_MARK
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else ():
            text = o.get("data", {}).get("text/plain", "") if o.output_type == "display_data" else ""
            if text.startswith(AUDIT_MARK):
                record = json.loads(text[len(AUDIT_MARK):])
                out[record["qid"]] = {int(k): v for k, v in record["verdicts"].items()}
    return out


def under_secret(report: runner.Report, secret: int) -> runner.Report:
    """The audited run's grades as one secret gives them: a question whose check failed under another
    secret only keeps its points here (its visible lines, which no secret changes, did not run: they
    are taken to pass, as they do for the reference)."""
    from tpkit.execution import Result
    outcomes = []
    for o in report.outcomes:
        results = dict(o.results)
        for qid, by_secret in (verdicts(o.nb).items() if o.nb is not None else ()):
            if qid not in results or secret not in by_secret:
                continue
            r, message = results[qid], by_secret[secret]
            if message is not None:
                results[qid] = Result(qid, 0.0, r.max_points, f"AssertionError: {message}")
            elif any(m is not None for m in by_secret.values()):
                results[qid] = Result(qid, r.max_points, r.max_points, "")
        outcomes.append(dataclasses.replace(o, results=results))
    return runner.Report(outcomes, report.wall_seconds, report.questions)


def catalogue_under_secrets(assignment: str, secrets=None, selected=None,
                            workers: int = 2) -> list[SecretRun]:
    """The catalogue (its suite sample unless `selected`; all of it with TPKIT_CATALOGUE=full) graded
    under each course secret: one execution of every entry, in which each check judges under every
    secret (`tpkit.checks.verifier`), read back as one report per secret."""
    secrets = audit_secrets() if secrets is None else list(secrets)
    selected = sampling.for_suite(runner.entries(assignment)) if selected is None else selected
    report = runner.run(selected, workers=workers, assignment=assignment, audit_secrets=secrets)
    return [SecretRun(s, under_secret(report, s)) for s in secrets]


def secrets_flaky(runs: list[SecretRun]) -> list[str]:
    """Every problem under any secret: "secret …: problem"."""
    return [f"secret {r.label}…: {p}" for r in runs for p in r.problems()]


def secrets_report_text(runs: list[SecretRun], assignment: str) -> str:
    wall = runs[0].report.wall_seconds if runs else 0
    lines = [f"assignment {assignment}: the catalogue ({len(runs[0].report.outcomes) if runs else 0} entries) "
             f"under {len(runs)} course secrets of 256 bits, each check judging under every secret "
             f"({wall:.0f} s wall)"]
    for r in runs:
        f = r.report.figures()
        lines.append(f"  secret {r.label}…: mistakes caught {len(r.report.caught())}/{f['mistakes']}, "
                     f"variants kept {len(r.report.full_marks())}/{f['variants']}, blast radius "
                     f"{len(r.report.blasting())}/{f['mistakes']}, {len(r.problems())} problem(s)")
    problems = secrets_flaky(runs)
    lines.append(f"{len(problems)} problem(s) under some secret" + (":" if problems else ""))
    lines += ["  " + p for p in problems]
    return "\n".join(lines)
