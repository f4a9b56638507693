"""Which catalogue mistakes a student sees before handing in: `python -m tpkit.catalogue.visibility`.

Every mistake of an assignment's catalogue (its package's ``mistakes``) is run as the student runs it: the perfect submission
with the mistake applied and the test cells in their released form (visible asserts only, no tpkit).
A mistake is *visible* when its own question's visible check fails (the student reads a French message
under that question); *elsewhere* when only another cell fails. Valid variants must pass every visible
check (a visible assert that fails also fails at grading). Executions reuse the catalogue's forked runs
(:mod:`tpkit.catalogue.forkrun`: shared prefixes, one torch thread).

The test cells raise as they do under nbgrader (the kit's kernels set ``NBGRADER_EXECUTION``): a visible
check that fails is an error there, while in a student's own kernel it shows its message and lets « Exécuter
tout » go on (:mod:`tpkit.selfcheck`). ``--assignment A`` runs another assignment's catalogue; the
mistakes that stay hidden on purpose, and why, are each package's ``hidden_reasons``.

Prints the share per question and overall; `--doc docs/catalogue.md` rewrites the visibility section
there (between the markers below), with the mistakes that stay hidden and why.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from tpkit import assignments, execution, labels, paths, submissions
from tpkit.catalogue import forkrun, runner

BEGIN, END = "<!-- visibility:begin -->", "<!-- visibility:end -->"
TARGET = 0.80

@dataclass
class Seen:
    name: str
    own: str
    own_message: str          # visible message of the own question ('' when it passes)
    elsewhere: list           # other test cells that fail visibly
    status: str
    unlisted: list            # cells failing visibly outside the entry's loses/also_loses; in the student's
                              # kernel nothing repairs a failed answer, so later cells fail too (at grading
                              # the hidden checks repair it: `python -m tpkit.catalogue` proves the grades)

    @property
    def visible(self) -> bool:
        return bool(self.own_message)


def _job(entry, perfect, assignment):
    nb = entry.notebook(perfect)
    return nb if entry.keep_experiments else runner.empty_experiments(nb, assignment)


def run(workers: int = 2, timeout: int = 300, entries=None,
        *, assignment: str) -> tuple[list[Seen], list]:
    """(mistakes as seen, names of variants failing a visible check)."""
    if entries is None:
        entries = runner.entries(assignment)
    perfect = submissions.solution_submission(assignment=assignment)
    jobs = {e.name: _job(e, perfect, assignment) for e in entries}
    done = forkrun.execute_many(jobs, base=runner.empty_experiments(perfect, assignment), workers=workers,
                                timeout=timeout, assignment_dir=paths.source_dir(assignment))
    seen, bad_variants = [], []
    for e in entries:
        x = done[e.name]
        results = execution.results(x.nb) if x.status == "ok" else {}
        failing = {q: r.message for q, r in results.items() if r.message}
        if e.kind == "variant":
            if failing or x.status != "ok":
                bad_variants.append(f"{e.name}: {failing or x.status}")
            continue
        seen.append(Seen(e.name, e.own, failing.get(e.own, ""), sorted(set(failing) - {e.own}), x.status,
                         sorted(set(failing) - set(e.loses) - set(e.also_loses))))
    return seen, bad_variants


def per_question(seen: list[Seen], assignment: str) -> dict[str, tuple[int, int]]:
    out: dict[str, list] = {}
    for s in seen:
        out.setdefault(s.own, [0, 0])
        out[s.own][0] += s.visible
        out[s.own][1] += 1
    order = labels.question_labels(paths.source_notebook(assignment))
    return {q: tuple(v) for q, v in sorted(out.items(), key=lambda kv: order[kv[0]].order
                                           if kv[0] in order else 99)}


def text(seen: list[Seen], bad_variants: list, assignment: str) -> str:
    reasons = assignments.get(assignment).hidden_reasons
    lines = [f"{assignment}: question   visible before submission"]
    for q, (v, n) in per_question(seen, assignment).items():
        lines.append(f"{labels.label(q, paths.source_notebook(assignment)):<26}{v}/{n}")
    v = sum(s.visible for s in seen)
    lines.append(f"total: {v}/{len(seen)} = {v / len(seen):.1%} of the catalogue's mistakes are flagged "
                 f"by their own question's visible check (target {TARGET:.0%})")
    unlisted = [s for s in seen if s.unlisted]
    lines.append(f"mistakes whose later cells also fail visibly (cascade in the student's kernel, "
                 f"repaired at grading): {len(unlisted)}")
    lines += [f"  {s.name}: {', '.join(s.unlisted)}" for s in unlisted]
    lines.append(f"valid variants failing a visible check: {len(bad_variants)}")
    lines += [f"  {b}" for b in bad_variants]
    lines.append("hidden until grading:")
    for s in seen:
        if not s.visible:
            where = f" (visible elsewhere: {', '.join(s.elsewhere)})" if s.elsewhere else ""
            lines.append(f"  {s.name}{where}: {reasons.get(s.name, 'NO WRITTEN REASON')}")
    return "\n".join(lines)


def markdown(seen: list[Seen], bad_variants: list, assignment: str) -> str:
    """The visibility section of `assignment`'s catalogue report."""
    source = paths.source_notebook(assignment)
    reasons = assignments.get(assignment).hidden_reasons
    v = sum(s.visible for s in seen)
    out = [BEGIN, "## Visibility before submission", "",
           "Generated by `python -m tpkit.catalogue.visibility --doc docs/catalogue.md`: each mistake run "
           "with the release's visible checks only (what a student sees before handing in).", "",
           f"**{v}/{len(seen)} = {v / len(seen):.1%}** of the mistakes fail their own question's visible "
           f"check with a French message; valid variants failing a visible check: {len(bad_variants)}.", "",
           "| question | visible / mistakes |", "|---|---|"]
    out += [f"| {labels.label(q, source)} | {a}/{n} |" for q, (a, n) in per_question(seen, assignment).items()]
    out += ["", "Mistakes that stay hidden until grading, and why:", "",
            "| mistake | question | why the visible check stays silent |", "|---|---|---|"]
    for s in seen:
        if not s.visible:
            out.append(f"| `{s.name}` | {labels.label(s.own, source)} | "
                       f"{reasons.get(s.name, 'no written reason')} |")
    out.append(END)
    return "\n".join(out)


def write_doc(path: Path, section: str) -> None:
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + section + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + section + "\n"
    path.write_text(new, encoding="utf-8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tpkit.catalogue.visibility",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--doc", type=Path, metavar="PATH", help="rewrite the visibility section there")
    p.add_argument("--assignment", default=assignments.default())
    p.add_argument("--root", type=Path, default=paths.ROOT, metavar="DIR",
                   help="another course folder holding the assignment (docs/exemple for the worked example)")
    args = p.parse_args(argv)
    if args.assignment not in assignments.names(args.root):
        p.error(f"unknown assignment {args.assignment!r} in {args.root}: {', '.join(assignments.names(args.root))}")
    with paths.course(args.root):
        seen, bad = run(workers=args.workers, assignment=args.assignment)
        print(text(seen, bad, args.assignment))
    if args.doc:
        write_doc(args.doc, markdown(seen, bad, args.assignment))
        print(f"written: {args.doc}")
    share = sum(s.visible for s in seen) / len(seen)
    return 0 if share >= TARGET and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
