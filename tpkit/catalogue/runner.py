"""Grade every catalogue entry once and judge the autograder: matrix entry × question (points
lost), sensitivity, specificity, blast radius, and the list of problems (what a test must fail on).

Entries are built from the perfect submission, with the hidden tests restored as `nbgrader
autograde` does. The ungraded experiment cells (which no check reads, and after which every graded
cell re-seeds its random generators) are emptied, except in the entries that are about them.
"""
from __future__ import annotations

import concurrent.futures
import copy
import importlib
import time
from dataclasses import dataclass, field

from tpkit import assignments, execution, paths, submissions, vocabulary
from tpkit.catalogue.entries import Entry

EMPTIED = "# cellule d'expériences (non notée) vidée pour le catalogue\n"


def ignore_pattern() -> str | None:
    """The course's `IgnorePattern` (nbgrader_config.py): stderr outputs matching it are removed
    by `nbgrader autograde` before scoring (warnings must not zero a test cell)."""
    from traitlets.config.loader import PyFileConfigLoader
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(paths.ROOT)).load_config()
    ip = cfg.get("IgnorePattern", {})
    return ip.get("pattern") or None if ip.get("enabled") else None


def score(nb, pattern: str | None = None) -> dict:
    """Per-test-cell results as `nbgrader autograde` gives them with the course's configuration:
    `execution.results` after the IgnorePattern preprocessor."""
    if pattern:
        from nbgrader.preprocessors import IgnorePattern
        nb, _ = IgnorePattern(pattern=pattern, enabled=True).preprocess(copy.deepcopy(nb), {})
    return execution.results(nb)


def entries(assignment: str) -> list[Entry]:
    """`assignment`'s catalogue (its package's mistakes and variants)."""
    all_entries = assignments.get(assignment).entries()
    names = [e.name for e in all_entries]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate catalogue entries: {sorted(duplicates)}")
    return all_entries


def empty_experiments(nb, assignment: str):
    present = {vocabulary.grade_id(c) for c in nb.cells}
    cells = assignments.get(assignment).experiment_cells
    return submissions.replace_sources(nb, {g: EMPTIED for g in cells if g in present})


def build(entry: Entry, assignment: str, perfect=None):
    """The notebook that the autograder executes for this entry."""
    perfect = perfect if perfect is not None else submissions.solution_submission(assignment=assignment)
    nb = entry.notebook(perfect)
    if not entry.keep_experiments:
        nb = empty_experiments(nb, assignment)
    return execution.with_hidden_tests(nb, assignment=assignment)


def base_notebook(assignment: str, perfect=None):
    perfect = perfect if perfect is not None else submissions.solution_submission(assignment=assignment)
    return execution.with_hidden_tests(empty_experiments(perfect, assignment), assignment=assignment)


@dataclass
class Outcome:
    entry: Entry
    results: dict                     # qid -> execution.Result
    status: str = "ok"
    seconds: float = 0.0
    shared_cells: int = 0
    nb: object = None                 # the executed notebook

    def lost(self) -> dict[str, float]:
        return {q: r.max_points - r.points for q, r in self.results.items() if r.points < r.max_points}


@dataclass
class Report:
    outcomes: list
    wall_seconds: float = 0.0
    questions: list = field(default_factory=list)

    @property
    def mistakes(self):
        return [o for o in self.outcomes if o.entry.kind == "mistake"]

    @property
    def variants(self):
        return [o for o in self.outcomes if o.entry.kind == "variant"]

    def caught(self):
        return [o for o in self.mistakes if o.entry.own in o.lost()]

    def full_marks(self):
        return [o for o in self.variants if not o.lost() and o.status == "ok"]

    def blasting(self):
        """Mistakes that cost points outside their own question (listed or not)."""
        return [o for o in self.mistakes if set(o.lost()) - {o.entry.own}]

    def extra_losses(self):
        """(outcome, qid, reason or None) for every loss outside a mistake's own question."""
        out = []
        for o in self.mistakes:
            listed = dict.fromkeys(o.entry.loses[1:], "listed in loses")
            listed.update(o.entry.also_loses)
            for q in sorted(set(o.lost()) - {o.entry.own}):
                out.append((o, q, listed.get(q)))
        return out

    def figures(self) -> dict:
        m, v = len(self.mistakes), len(self.variants)
        return {"mistakes": m, "variants": v,
                "sensitivity": len(self.caught()) / m if m else 1.0,
                "specificity": len(self.full_marks()) / v if v else 1.0,
                "blast_radius": len(self.blasting()) / m if m else 0.0,
                "extra_losses": len(self.extra_losses()),
                "extra_losses_with_reason": sum(1 for _, _, r in self.extra_losses() if r)}

    def problems(self) -> list[str]:
        """Everything that makes the autograder wrong on this catalogue (empty = all good)."""
        return [p for o in self.outcomes for p in outcome_problems(o)]


def outcome_problems(o: Outcome) -> list[str]:
    """What is wrong with the grading of one entry: an escaped mistake, a missing or raw message,
    a loss outside the listed questions, a penalised variant, a run that did not complete."""
    e, lost, out = o.entry, o.lost(), []
    if o.status != "ok":
        return [f"{e.name}: execution {o.status}"]
    unknown = (set(e.loses) | set(e.also_loses)) - set(o.results)
    if unknown:
        out.append(f"{e.name}: unknown question(s) {sorted(unknown)}")
    if e.kind == "variant":
        if lost:
            out.append(f"penalised variant {e.name}: " + "; ".join(
                f"{q} -{p:g} ({o.results[q].message[:160]})" for q, p in lost.items()))
        return out
    for q in e.loses:
        if q not in lost and q in o.results:
            out.append(f"escaped mistake {e.name}: {q} keeps its points")
    own = o.results.get(e.own)
    if own is not None and e.own in lost:
        if not own.message.startswith("AssertionError"):
            out.append(f"{e.name}: {e.own} fails with a raw error, not a French diagnostic: "
                       f"{own.message[:160]}")
        if e.message not in own.message:
            out.append(f"{e.name}: {e.own} message lacks {e.message!r}: {own.message[:200]}")
    allowed = set(e.loses) | set(e.also_loses)
    for q in sorted(set(lost) - allowed):
        out.append(f"unlisted loss {e.name}: {q} -{lost[q]:g} ({o.results[q].message[:160]})")
    for q in sorted(set(e.also_loses) - set(lost)):
        out.append(f"{e.name}: also_loses lists {q}, which keeps its points (remove it)")
    return out


def run(selected: list[Entry] | None = None, workers: int = 2, executor: str = "fork",
        timeout: int = 300, *, assignment: str, secret: int = 0, audit_secrets=()) -> Report:
    """Grade the entries (all by default) once each, in parallel; the checks draw their inputs from
    the course secret `secret` (0: the fixed inputs of the untrusted mode; the grading executor's
    course otherwise draws its own); `audit_secrets`: every check judges under each of them
    (`tpkit.catalogue.flakiness.catalogue_under_secrets`; forked executor only)."""
    from tpkit.catalogue import forkrun
    if (secret or audit_secrets) and executor == "kernel" or audit_secrets and executor != "fork":
        raise ValueError("secrets: with the forked executor (and `secret` with the grading one) only")
    selected = entries(assignment) if selected is None else selected
    perfect = submissions.solution_submission(assignment=assignment)
    jobs = {e.name: build(e, assignment, perfect) for e in selected}
    t0 = time.time()
    outcomes, pattern = [], ignore_pattern()
    if executor == "fork":
        done = forkrun.execute_many(jobs, base=base_notebook(assignment, perfect), workers=workers,
                                    timeout=timeout, assignment_dir=paths.source_dir(assignment), secret=secret,
                                    audit_secrets=audit_secrets)
        for e in selected:
            x = done[e.name]
            outcomes.append(Outcome(e, score(x.nb, pattern), x.status, x.seconds, x.shared_cells, x.nb))
    elif executor == "kernel":
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {e.name: pool.submit(_kernel_run, jobs[e.name], timeout, assignment) for e in selected}
            for e in selected:
                status, nb, seconds = futures[e.name].result()
                outcomes.append(Outcome(e, score(nb, pattern) if nb is not None else {}, status, seconds,
                                        0, nb))
    elif executor == "grading":
        graded, seconds = _grading_run(jobs, workers, timeout, assignment, secret)
        for e in selected:
            nb = graded.get(e.name)
            outcomes.append(Outcome(e, score(nb, pattern) if nb is not None else {},
                                    "ok" if nb is not None else "crashed: not graded", seconds / len(jobs), 0, nb))
    else:
        raise ValueError(f"unknown executor {executor!r}")
    questions = [q for q in outcomes[0].results] if outcomes else []
    return Report(outcomes, time.time() - t0, questions)


def _grading_run(jobs: dict, workers: int, timeout: int, assignment: str,
                 secret: int = 0) -> tuple:
    """Every job handed in as a student's notebook to the real grading command (trusted checks in the
    grading process, sandboxed kernels) in a temporary copy of the course; the autograded notebooks."""
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import nbformat

    from tpkit import release
    with tempfile.TemporaryDirectory(prefix="tp-catalogue-") as tmp:
        course = Path(tmp) / "course"
        course.mkdir()
        shutil.copy(paths.ROOT / "nbgrader_config.py", course)
        shutil.copytree(paths.source_dir(assignment), course / "source" / assignment)
        release.generate(root=course, assignment=assignment)
        if secret:
            from tpkit.grading import trusted
            trusted.pin_secret(course, secret)
        for name, nb in jobs.items():
            folder = course / "submitted" / name / assignment
            folder.mkdir(parents=True)
            nbformat.write(nb, str(folder / paths.notebook_name(assignment)))
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-m", "tpkit.grading", "--root", str(course), "--submitted",
                               "--workers", str(workers), "--no-feedback", "--time-limit", str(timeout),
                               "--assignment", assignment],
                              cwd=course, env=release.nbgrader_env(), capture_output=True, text=True)
        seconds = time.time() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"grading failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        out = {}
        for name in jobs:
            path = course / "autograded" / name / assignment / paths.notebook_name(assignment)
            if path.is_file():
                out[name] = submissions.read(path)
        return out, seconds


def _kernel_run(nb, timeout, assignment: str):
    t0 = time.time()
    try:
        return "ok", execution.run(nb, timeout=timeout, assignment=assignment), time.time() - t0
    except Exception as exc:  # a cell timeout or a dead kernel
        return f"crashed: {type(exc).__name__}: {exc}"[:300], None, time.time() - t0


# ------------------------------------------------------------------ presentation
def _fmt(points: float) -> str:
    return "·" if not points else f"{points:g}"


def matrix_text(report: Report) -> str:
    qs = report.questions
    width = max(len(o.entry.name) for o in report.outcomes) + 2
    lines = ["columns: " + "  ".join(f"{i + 1}={q}" for i, q in enumerate(qs)),
             "cells: points lost ('·' none); '*' marks a mistake's own question", ""]
    lines.append(" " * (width + 2) + "".join(f"{i + 1:>4}" for i in range(len(qs))))
    for kind in ("mistake", "variant"):
        lines.append(f"-- {kind}s")
        for o in report.outcomes:
            if o.entry.kind != kind:
                continue
            lost = o.lost()
            row = ""
            for q in qs:
                mark = "*" if q == o.entry.own else " "
                row += f"{_fmt(lost.get(q, 0)) + mark:>4}"
            flag = "" if o.status == "ok" else f"  [{o.status}]"
            lines.append(f"{o.entry.name:<{width}}  {row}{flag}")
    return "\n".join(lines)


def summary_text(report: Report) -> str:
    f = report.figures()
    seconds = sorted(o.seconds for o in report.outcomes)
    lines = [f"catalogue: {f['mistakes']} mistakes, {f['variants']} variants; "
             f"matrix {len(report.outcomes)} entries × {len(report.questions)} questions",
             f"sensitivity  {len(report.caught())}/{f['mistakes']} = {f['sensitivity']:.1%} "
             "(mistakes whose own question loses points)",
             f"specificity  {len(report.full_marks())}/{f['variants']} = {f['specificity']:.1%} "
             "(variants with full marks)",
             f"blast radius {len(report.blasting())}/{f['mistakes']} = {f['blast_radius']:.1%} "
             "(mistakes costing points outside their own question); "
             f"{f['extra_losses_with_reason']}/{f['extra_losses']} such losses have a written reason",
             f"wall time {report.wall_seconds:.0f} s; per entry (own cells) median "
             f"{seconds[len(seconds) // 2]:.1f} s, max {seconds[-1]:.1f} s" if seconds else ""]
    for o, q, reason in report.extra_losses():
        lines.append(f"  extra loss: {o.entry.name} -> {q}: {reason or 'NO WRITTEN REASON'}")
    return "\n".join(lines)


def markdown(report: Report, assignment: str, flaky=None) -> str:
    """An assignment's catalogue report (where its package says: ``catalogue_doc``, checked by
    ``catalogue_test``): the catalogue, what the autograder gives each entry, and the figures. The
    command line's default assignment (the course's first) needs no ``--assignment`` in the command."""
    f = report.figures()
    qs = report.questions
    a = assignments.get(assignment)
    doc, test = a.catalogue_doc, a.catalogue_test
    first = assignment == assignments.default()
    option = "" if first else f"--assignment {assignment} "
    if paths.course_root().resolve() != paths.ROOT.resolve():  # --root: another course folder
        option = f"--root {paths.course_root().resolve().relative_to(paths.ROOT)} " + option
    title = "" if first else f" of `{assignment}`"
    out = [f"# Catalogue of mistakes and valid variants{title}",
           "",
           f"Generated by `python -m tpkit.catalogue {option}--doc {doc}`; checked by "
           f"`{test}`. Each entry is one change to the instructor's solution, graded "
           "with the hidden tests (ungraded experiment cells emptied).",
           "",
           "| figure | value |", "|---|---|",
           f"| matrix | {len(report.outcomes)} entries × {len(qs)} questions |",
           f"| sensitivity (mistakes caught) | {len(report.caught())}/{f['mistakes']} = {f['sensitivity']:.1%} |",
           f"| specificity (variants at full marks) | {len(report.full_marks())}/{f['variants']} = {f['specificity']:.1%} |",
           f"| blast radius (mistakes costing points outside their own question) | "
           f"{len(report.blasting())}/{f['mistakes']} = {f['blast_radius']:.1%} |",
           f"| extra losses with a written reason | {f['extra_losses_with_reason']}/{f['extra_losses']} |",
           f"| wall time of the run | {report.wall_seconds:.0f} s |",
           ""]
    problems = report.problems()
    out += ["**Problems:** " + ("none" if not problems else ""), ""]
    out += [f"- {p}" for p in problems]
    out += ["", "## Mistakes", "", "| entry | what the student did | points lost | message of the own question |",
            "|---|---|---|---|"]
    for o in report.mistakes:
        lost = ", ".join(f"{q} −{p:g}" for q, p in o.lost().items()) or "**none**"
        msg = o.results.get(o.entry.own).message if o.entry.own in o.results else ""
        msg = msg.replace("AssertionError: ", "").replace("|", "\\|")
        out.append(f"| `{o.entry.name}` | {o.entry.description} | {lost} | {msg} |")
    out += ["", "## Valid variants", "", "| entry | how it is written | points lost |", "|---|---|---|"]
    for o in report.variants:
        lost = ", ".join(f"{q} −{p:g}" for q, p in o.lost().items()) or "none"
        out.append(f"| `{o.entry.name}` | {o.entry.description} | {lost} |")
    out += ["", "## Matrix", "", "```", matrix_text(report), "```", ""]
    out += [importlib.import_module(a.generalisation).markdown(report) if a.generalisation else ""]
    if flaky is not None:
        out += ["## Flakiness audit", "", flaky, ""]
    return "\n".join(out)
