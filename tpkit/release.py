"""Generate the student release from the instructor notebook: `python -m tpkit.release`
(every assignment of source/; `--assignment A` for one).

First grades the source (`pregrade`): the instructor's solution must earn every autograded point and
the blank release none, with the checks reading the imposed values from that very source; otherwise
the release is refused with a French message naming the question (exit status 2, nothing written).
Then runs `nbgrader generate_assignment --force`, which also stores the hidden tests in
gradebook.db (autograde restores them from there), and checks that no solution or hidden
test reached the release.
"""
from __future__ import annotations

import concurrent.futures
import copy
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from tpkit import assignments, paths
from tpkit.environment import venv_on_path
from tpkit.vocabulary import MARKERS

LEAK_MARKERS = MARKERS + ("tpkit",)


def nbgrader_env() -> dict:
    """The environment of nbgrader's commands: the venv's executables (alembic, jupyter) on PATH."""
    return venv_on_path()


def solution_and_blank(source_nb: Path):
    """The instructor's solution (markers removed) and the blank release (nbgrader's ClearSolutions
    with the course's stub), both with the hidden tests, as autograde runs them."""
    from nbgrader.preprocessors import ClearSolutions
    from traitlets.config.loader import PyFileConfigLoader

    from tpkit import vocabulary
    nb = nbformat.read(str(source_nb), as_version=4)
    solution = copy.deepcopy(nb)
    for cell in solution.cells:
        if vocabulary.is_answer(cell):
            cell.source = vocabulary.strip_solution_markers(cell.source)
    course = Path(source_nb).resolve().parents[2]  # <course>/source/<assignment>/<notebook>
    course = course if (course / "nbgrader_config.py").is_file() else paths.ROOT  # a bare copy: the kit's stub
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    blank, _ = ClearSolutions(config=config).preprocess(copy.deepcopy(nb), {})
    return solution, blank


def pregrade(source_nb: Path, blank_too: bool = True) -> list[str]:
    """Grade the source's solution (full marks expected) and its blank release (zero expected), with
    the checks reading the imposed values of `source_nb`; French problems, one per question."""
    from tpkit import execution, labels
    solution, blank = solution_and_blank(source_nb)
    previous = os.environ.get("TPKIT_SOURCE_NOTEBOOK")
    os.environ["TPKIT_SOURCE_NOTEBOOK"] = str(Path(source_nb).resolve())
    try:
        jobs = {"solution": solution, "blank": blank} if blank_too else {"solution": solution}
        with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
            runs = {k: pool.submit(execution.run, nb, 600, 1, Path(source_nb).parent) for k, nb in jobs.items()}
            results = {k: execution.results(f.result()) for k, f in runs.items()}
    finally:
        if previous is None:
            os.environ.pop("TPKIT_SOURCE_NOTEBOOK", None)
        else:
            os.environ["TPKIT_SOURCE_NOTEBOOK"] = previous
    name = lambda q: labels.label(q, source_nb)  # noqa: E731
    problems = []
    for qid, r in results["solution"].items():
        if r.points < r.max_points:
            problems.append(f"la solution de l'enseignant perd des points à la question {name(qid)} : "
                            f"{r.message.splitlines()[0] if r.message else ''}".rstrip(" :"))
    for qid, r in results.get("blank", {}).items():
        if r.points > 0:
            problems.append(f"le notebook distribué vide obtient des points à la question {name(qid)} : "
                            "sa vérification ne peut pas échouer sur le code non complété")
    return problems


def generate(assignment: str, root: Path = paths.ROOT, check: bool = False) -> Path:
    """Write the release; with `check` (the command line), grade the source first (`pregrade`)."""
    # the trusted executor runs hidden regions on the grader's side: they may only call verifier(...)
    from tpkit.grading.trusted import HiddenTestError, validate_hidden_tests
    sources = [c.source for nb in (root / "source" / assignment).glob("*.ipynb")
               for c in nbformat.read(str(nb), as_version=4).cells if c.cell_type == "code"]
    try:
        validate_hidden_tests(sources)
    except HiddenTestError as exc:
        raise SystemExit(f"test caché invalide : {exc}")
    if check:
        for nb_path in sorted((root / "source" / assignment).glob("*.ipynb")):
            problems = pregrade(nb_path)
            if problems:
                print("publication refusée : " + "\n".join(problems), file=sys.stderr)
                raise SystemExit(2)
    cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
           "--log-level=WARN"]
    proc = subprocess.run(cmd, cwd=root, env=nbgrader_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"nbgrader generate_assignment failed:\n{proc.stdout}\n{proc.stderr}")
    release = root / "release" / assignment
    leaks = [f"{p.relative_to(root)}: {m}" for p in release.rglob("*") if p.is_file()
             for m in LEAK_MARKERS if m.encode() in p.read_bytes()]
    if leaks:
        raise SystemExit("solution or hidden test found in the release:\n" + "\n".join(leaks))
    return release


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(prog="python -m tpkit.release",
                                     description="Régénère la version étudiante (release/) de chaque devoir, après "
                                     "avoir corrigé sa solution (tous les points) et sa version vierge (aucun).")
    parser.add_argument("--root", type=Path, default=paths.ROOT, metavar="DOSSIER",
                        help="dossier du cours (par défaut : ce kit)")
    parser.add_argument("--assignment", help="ce devoir seulement (par défaut : chaque devoir de source/)")
    args = parser.parse_args()
    root = args.root.resolve()
    if not (root / "nbgrader_config.py").is_file() or not (root / "source").is_dir():
        parser.error(f"{root} n'est pas un dossier de cours (nbgrader_config.py et source/ attendus)")
    known = assignments.names(root)
    if args.assignment and args.assignment not in known:
        parser.error(f"devoir inconnu « {args.assignment} » (devoirs de {root} : {', '.join(known)})")
    with paths.course(root):  # the question names of its messages: this course's notebooks
        for name in [args.assignment] if args.assignment else known:
            out = generate(root=root, assignment=name, check=True)
            print(f"version étudiante écrite : {out.relative_to(root)}")
