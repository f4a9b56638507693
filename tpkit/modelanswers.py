"""The numbers the model answers quote, produced by the kit's own reference run (issue #26, item 4):
`python -m tpkit.modelanswers [--assignment A] [--check]`.

A model answer (a written-answer cell of ``source/``, see :mod:`tpkit.rubrics`) never types a measured
number: it writes ``<!-- ref:taux_quadratique -->0.9756<!-- /ref -->`` and this command fills the value
in. Run it after ``python -m tpkit.release`` (the release holds no model answer: it does not change).
The reference run is the perfect submission (the release with the instructor's answers), executed
once with a probe after some cells: each :class:`tpkit.assignments.Number` (the numbers an assignment's
package declares) is read right after the cell that makes it
(``after``), before a later cell changes its variables; a number an experiment only prints is read
from that cell's output (``printed``). ``--check`` writes nothing and exits 1 when a model answer is
out of sync; the slow test ``tests/test_rubrics.py`` does the same. The run is deterministic (seeds
given in the notebooks, one torch thread), so the numbers are the ones a student's run of the
solution prints.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat

from tpkit import assignments, execution, paths, submissions, vocabulary
from tpkit.assignments import Number  # noqa: F401  (what a package's model_answers holds)

TAG = re.compile(r"<!-- ref:(\w+) -->(.*?)<!-- /ref -->")
_MARK = "REFERENCE-NUMBERS "


def numbers(assignment: str) -> tuple:
    """The numbers `assignment`'s model answers quote (its package's ``model_answers``)."""
    return assignments.get(assignment).model_answers


def _probe(numbers) -> str:
    lines = ["_nombres_reference = globals().setdefault('_nombres_reference', {})"]
    lines += [f"_nombres_reference[{k.name!r}] = float({k.expr})" for k in numbers]
    return "\n".join(lines)


def reference_notebook(assignment: str) -> nbformat.NotebookNode:
    """The perfect submission with a probe cell after each cell that makes a number, and a last cell
    that prints them all."""
    try:
        nb = submissions.solution_submission(assignment=assignment)
    except KeyError as exc:  # an answer cell of the source that the release does not have yet
        raise SystemExit(f"release/{assignment} is older than its source ({exc}): run python -m tpkit.release first")
    read_in_kernel = [k for k in numbers(assignment) if k.expr]
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        here = [k for k in read_in_kernel if vocabulary.grade_id(cell) == k.after]
        if here:
            cells.append(nbformat.v4.new_code_cell(_probe(here)))
    cells.append(nbformat.v4.new_code_cell(
        f"import json\nprint({_MARK!r} + json.dumps(globals().get('_nombres_reference', {{}})))"))
    nb.cells = cells
    return nb


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def numbers_from(executed: nbformat.NotebookNode, assignment: str) -> dict[str, str]:
    """name -> the number's text, read from the executed reference notebook."""
    errors = [(vocabulary.grade_id(c) or i, o.get("ename"), o.get("evalue"))
              for i, c in enumerate(executed.cells) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        raise RuntimeError(f"the reference run of {assignment} raised: {errors[:3]}")
    last = _stdout(executed.cells[-1])
    values = json.loads(last[last.index(_MARK) + len(_MARK):])
    out = {}
    for k in numbers(assignment):
        if k.printed:
            cell = next(c for c in executed.cells if vocabulary.grade_id(c) == k.after)
            found = re.search(k.printed, _stdout(cell))
            if not found:
                raise RuntimeError(f"{assignment}: {k.name} not printed by {k.after} ({k.printed!r})")
            values[k.name] = float(found.group(1))
        out[k.name] = k.text(values[k.name])
    return out


def run_reference(assignment: str) -> dict[str, str]:
    executed = execution.run(reference_notebook(assignment), timeout=600, assignment=assignment)
    return numbers_from(executed, assignment)


def filled(source: str, numbers: dict[str, str]) -> str:
    """A model answer with every tagged number set to the reference run's (unknown names raise)."""
    def put(m):
        if m.group(1) not in numbers:
            raise KeyError(f"model answer quotes {m.group(1)!r}, which the reference run does not make")
        return f"<!-- ref:{m.group(1)} -->{numbers[m.group(1)]}<!-- /ref -->"
    return TAG.sub(put, source)


def model_answer_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "markdown"
            and c.get("metadata", {}).get("nbgrader", {}).get("solution")]


def out_of_sync(nb, numbers: dict[str, str]) -> list[str]:
    """Grade ids of the model answers whose numbers differ from the reference run's."""
    return [vocabulary.grade_id(c) for c in model_answer_cells(nb) if filled(c.source, numbers) != c.source]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tpkit.modelanswers")
    parser.add_argument("--assignment", help="only this assignment (default: every assignment of source/)")
    parser.add_argument("--root", type=Path, default=paths.ROOT, metavar="DIR",
                        help="another course folder (docs/exemple for the worked example)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when out of sync")
    args = parser.parse_args(argv)
    known = assignments.names(args.root)
    if args.assignment and args.assignment not in known:
        parser.error(f"unknown assignment {args.assignment!r} in {args.root}: {', '.join(known)}")
    with paths.course(args.root):
        return _fill(args, [args.assignment] if args.assignment else known)


def _fill(args, names) -> int:
    stale = []
    for name in names:
        numbers = run_reference(name)
        path = paths.source_notebook(name)
        nb = nbformat.read(str(path), as_version=4)
        behind = out_of_sync(nb, numbers)
        print(f"{name}: " + ", ".join(f"{k} = {v}" for k, v in numbers.items()))
        if args.check:
            stale += [f"{name}: {gid}" for gid in behind]
        elif behind:
            for cell in model_answer_cells(nb):
                cell.source = filled(cell.source, numbers)
            nbformat.write(nb, str(path))
            print(f"model answers written: {path} ({', '.join(behind)})")
    if stale:
        print("model answers out of sync with the reference run (python -m tpkit.modelanswers): "
              + "; ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
