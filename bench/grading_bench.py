"""Benchmark of the grading command: ``python bench/grading_bench.py [-k 40]`` (``make bench``).

In a temporary copy of the course (fresh release and gradebook), K submissions are laid out by cycling
through the ordinary example submissions (reference, vierge, partiel, erreurs_typiques: the ones plain
nbgrader can grade too; the pathological examples would measure timeouts, not grading). Then:

1. compute-only floor (measured before the grading run and, unless ``--no-floor-after``, again right
   after it: wall / floor uses the mean, and the drift between the two is printed): each distinct
   notebook, hidden tests restored as autograde does, has its cells executed in an already warm
   interpreter (tpkit.catalogue.forkrun: a process that imported torch,
   numpy, matplotlib forks one child per notebook), one torch thread, one at a time, ``--floor-repeat``
   times (median of the child's CPU seconds); a submission costs what its notebook costs; floor = sum
   over the class / cores. It is what the student code **and the checks** cost: the hidden
   ``verifier(...)`` lines run in that interpreter, so the floor holds both sides of each check (the
   checker's own computations and what the notebook computes to answer it), without the witness
   protocol, kernel start-up, import or I/O. The checks' reference computations that the grader caches
   once per run (reference data, the statement's gradient descent) are computed before the first fork,
   as the grader computes them once per run;
2. ``python -m tpkit.grading --submitted`` on the K submissions (pre-check, autograde, feedback,
   exports: the whole command, sandboxed, warm kernels; ``--dask-scheduler local:2`` through a Dask
   cluster), wall time; ``--cold`` also times it with
   the kernels started from scratch (``TPKIT_KERNELS=cold``), ``--compare-sandbox`` unsandboxed;
3. plain serial ``nbgrader autograde`` (one command for the class), pinned to one torch/BLAS thread,
   on the same K submissions (``--serial-sample N``: on the first N, extrapolated linearly).

``--class-200`` grades a class of 40 and one of 200 (floor and serial scaled from the same
measurements) to show how the cost grows. Prints seconds per submission, throughput, the CPU that
the run used (grading process and kernels: c + o per submission against the floor's c), wall / floor
and the speed-up over serial nbgrader, each with the load average, and ends with the two ratios of
issue #14 on lines of their own. No assertion: the figures depend on the machine and on what else runs
on it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAIN = "tp_reseaux_neurones"  # the course's main assignment

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tpkit import paths  # noqa: E402

BENCH_SET = ("reference", "vierge", "partiel", "erreurs_typiques")


def env_with_venv() -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def make_course(dest: Path) -> Path:
    from tpkit import release
    dest.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", dest)
    shutil.copytree(paths.source_dir(MAIN), dest / "source" / MAIN)
    release.generate(MAIN, root=dest)
    return dest


def lay_out(course: Path, k: int) -> list:
    from tpkit import examples
    built = examples.build(MAIN, course / "source" / MAIN / paths.notebook_name(MAIN),
                           course / "release" / MAIN / paths.notebook_name(MAIN))
    students = []
    for i in range(k):
        name, data = built[BENCH_SET[i % len(BENCH_SET)]]
        student = f"bench_{i:03d}"
        folder = course / "submitted" / student / MAIN
        folder.mkdir(parents=True)
        (folder / name).write_bytes(data)
        students.append(student)
    return students


def compute_floor(course: Path, students: list, repeat: int) -> dict:
    """CPU seconds of computation of each distinct notebook, checks included (cells only, warm
    interpreter, one thread, median of ``repeat`` runs), keyed by the notebook's bytes; see the module
    docstring."""
    import statistics
    import nbformat
    from tpkit import execution
    from tpkit.catalogue import forkrun
    source = course / "source" / MAIN
    distinct: dict = {}
    for s in students:
        data = (course / "submitted" / s / MAIN / paths.notebook_name(MAIN)).read_bytes()
        distinct.setdefault(data, len(distinct))
    jobs = {}
    for data, i in distinct.items():
        nb = execution.with_hidden_tests(nbformat.reads(data.decode(), as_version=4),
                                         source_nb=source / paths.notebook_name(MAIN))
        for r in range(repeat):
            jobs[f"nb{i}-{r}"] = nb
    done = forkrun.execute_many(jobs, base=None, workers=1, threads=1, assignment_dir=source)
    return {data: statistics.median(done[f"nb{i}-{r}"].cpu_seconds for r in range(repeat))
            for data, i in distinct.items()}


def floor(course: Path, students: list, per_notebook: dict) -> float:
    """Total compute-only seconds of the class (a submission costs what its notebook costs)."""
    return sum(per_notebook[(course / "submitted" / s / MAIN / paths.notebook_name(MAIN)).read_bytes()]
               for s in students)


def ours(course: Path, workers: int, sandbox: bool = True, cold: bool = False, dask: str = "") -> float:
    # --force: each measure grades the whole class (runs are incremental by default)
    cmd = [sys.executable, "-m", "tpkit.grading", "--submitted", "--force", "--root", str(course)]
    if workers:
        cmd += ["--workers", str(workers)]
    if dask:
        cmd += ["--dask-scheduler", dask]
    if not sandbox:
        cmd += ["--sans-bac-a-sable"]
    env = env_with_venv()
    env["TPKIT_KERNELS"] = "cold" if cold else "warm"
    t0, c0 = time.perf_counter(), children_cpu()
    proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    LAST_CPU[0] = children_cpu() - c0
    if proc.returncode != 0:
        raise SystemExit(f"grading failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return wall


#: CPU seconds (user + system) of the last command's waited-for processes: serial nbgrader's
#: kernels are; tpkit's, killed with their sandbox, are not (see the report's own_cpu_seconds).
LAST_CPU = [0.0]


def children_cpu() -> float:
    """CPU seconds of this process's waited-for descendants: what a command cost, less sensitive
    than its wall time to what else runs on the machine."""
    import resource
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def serial_nbgrader(course: Path, students: list, sample: int, scratch: Path, threads: int = 1) -> tuple:
    """Plain `nbgrader autograde` of the class on a copy holding `sample` submissions."""
    copy = scratch / "serial"
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir()
    for item in ("nbgrader_config.py", "gradebook.db"):
        shutil.copy(course / item, copy / item)
    for item in ("source", "release"):
        shutil.copytree(course / item, copy / item)
    chosen = students[:sample] if sample else students
    for s in chosen:
        shutil.copytree(course / "submitted" / s, copy / "submitted" / s)
    cmd = [sys.executable, "-m", "nbgrader", "autograde", MAIN, "--force", "--log-level=ERROR"]
    env = env_with_venv()
    env["TPKIT_AUTOGRADE_NON_SECURISE"] = "1"  # the baseline: plain nbgrader, untrusted mode on purpose
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   OPENBLAS_NUM_THREADS=str(threads))
    t0, c0 = time.perf_counter(), children_cpu()
    subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True)
    LAST_CPU[0] = children_cpu() - c0
    return time.perf_counter() - t0, len(chosen)


def load() -> str:
    """The machine's load while a phase ran (other processes skew every figure)."""
    one, five, _ = os.getloadavg()
    return f"[load average {one:.1f} (5 min: {five:.1f})]"


def grade_class(scratch: Path, k: int, workers: int, args, per_notebook) -> dict:
    """Lay out and grade a class of k; print its figures; return them (per_notebook: the compute-only
    seconds of each distinct notebook, measured here if None)."""
    cores = os.cpu_count() or 1
    course = make_course(scratch / f"course-{k}")
    students = lay_out(course, k)
    print(f"-- class of {k} (copies of {', '.join(BENCH_SET)}), {cores} cores, {workers} workers; "
          f"course in {course}", flush=True)
    out = {"k": k}
    if not args.skip_floor:
        if per_notebook is None:
            per_notebook = compute_floor(course, students, args.floor_repeat)
        total = floor(course, students, per_notebook)
        out["floor"] = fl = total / cores
        print(f"compute-only floor (cells and hidden checks, warm interpreter, one thread, CPU): {total:.1f} s "
              f"({total / k:.2f} s per notebook; per distinct notebook: "
              f"{', '.join(f'{v:.2f}' for v in per_notebook.values())}) -> spread over {cores} cores: "
              f"{fl:.1f} s {load()}", flush=True)
    if args.compare_sandbox:
        bare = ours(course, workers, sandbox=False)
        print(f"tpkit.grading --sans-bac-a-sable: wall {bare:.1f} s = {bare / k:.2f} s per submission {load()}",
              flush=True)
    if args.cold:
        cold = ours(course, workers, cold=True)
        print(f"tpkit.grading, cold kernels (TPKIT_KERNELS=cold): wall {cold:.1f} s = {cold / k:.2f} s per "
              f"submission {load()}", flush=True)
    out["wall"] = wall = ours(course, workers, dask=args.dask_scheduler)
    report = json.loads((course / "exports" / "grading_report.json").read_text())
    statuses: dict = {}
    for r in report["results"].values():
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    own, kern = report["own_cpu_seconds"], report.get("kernels_cpu_seconds", 0.0)
    out["cpu"] = own + kern
    where = f" on the Dask cluster {args.dask_scheduler}" if args.dask_scheduler else ""
    print(f"tpkit.grading (sandboxed, warm kernels{where}): wall {wall:.1f} s = {wall / k:.2f} s per submission, "
          f"{60 * k / wall:.1f} submissions/min (statuses: {statuses}) {load()}", flush=True)
    print(f"  CPU: grading process {own:.1f} s ({own / k:.2f} s per submission, imports included), kernels "
          f"{kern:.1f} s ({kern / k:.2f}); together {(own + kern) / k:.2f} s per submission"
          + (f" against the floor's {total / k:.2f}: overhead o = {(own + kern - total) / k:.2f} s"
             if not args.skip_floor else "")
          + f"; cores busy {100 * (own + kern) / (wall * cores):.0f} % of the wall time", flush=True)
    if args.compare_sandbox:
        print(f"  sandbox overhead {100 * (wall / bare - 1):+.1f} % (target <= +15 %)", flush=True)
    if args.cold:
        print(f"  warm / cold kernels: {wall / cold:.2f}", flush=True)
    if not args.skip_floor:
        if args.floor_after:  # this machine's speed can drift by tens of percent within minutes
            after = floor(course, students, compute_floor(course, students, args.floor_repeat))
            fl_after = after / cores
            print(f"compute-only floor again, right after the run: {after:.1f} s of CPU -> {fl_after:.1f} s over "
                  f"{cores} cores (drift {100 * (fl_after / fl - 1):+.0f} %; wall / floor {wall / fl:.2f} before, "
                  f"{wall / fl_after:.2f} after) {load()}", flush=True)
            out["floor"] = fl = (fl + fl_after) / 2
        out["ratio_floor"] = wall / fl
        print(f"  wall / compute-only floor = {wall / fl:.2f} (target <= 1.3"
              + ("; floor: mean of before and after" if args.floor_after else "") + f") {load()}", flush=True)
    if not args.skip_serial and (args.serial_per is None):
        s_wall, n = serial_nbgrader(course, students, args.serial_sample, scratch, args.serial_threads)
        args.serial_per = s_wall / n
        print(f"  (serial nbgrader used {LAST_CPU[0]:.1f} s of CPU = {LAST_CPU[0] / n:.2f} s per submission)",
              flush=True)
        args.serial_how = "measured on all" if n == k else f"measured on {n} of {k}, extrapolated"
    if args.serial_per is not None:
        extrapolated = out["serial"] = args.serial_per * k
        out["speedup"] = extrapolated / wall
        print(f"serial nbgrader autograde, {args.serial_threads} torch/BLAS thread(s): "
              f"{args.serial_per:.2f} s per submission ({args.serial_how}: {extrapolated:.0f} s for {k}) "
              f"-> speed-up {extrapolated / wall:.2f}x (target >= 2.5) {load()}", flush=True)
    out["per_notebook"] = per_notebook
    if not args.keep:
        shutil.rmtree(course, ignore_errors=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-k", type=int, default=40, help="number of submissions (default 40)")
    p.add_argument("--class-200", action="store_true",
                   help="grade a class of K and one of 200, to show how the cost grows")
    p.add_argument("--workers", type=int, default=0, help="grading workers (default: cores)")
    p.add_argument("--serial-sample", type=int, default=0,
                   help="submissions graded by plain nbgrader (0 = all K, the default)")
    p.add_argument("--serial-threads", type=int, default=1,
                   help="torch/BLAS threads of plain nbgrader's kernel (default 1)")
    p.add_argument("--floor-repeat", type=int, default=3,
                   help="runs of each distinct notebook for the compute-only floor (median; default 3)")
    p.add_argument("--no-floor-after", dest="floor_after", action="store_false",
                   help="measure the floor only before the run (by default also right after it, and the "
                        "ratio uses their mean: the machine's speed may drift while the class is graded)")
    p.add_argument("--cold", action="store_true",
                   help="also grade the class with cold kernels (TPKIT_KERNELS=cold)")
    p.add_argument("--dask-scheduler", default="", metavar="ADDRESS",
                   help="grade through a Dask cluster (its scheduler's address, or local:N), as "
                        "`python -m tpkit.grading --dask-scheduler`; the Dask workers' own start-up CPU is "
                        "not in the report's CPU figures")
    p.add_argument("--skip-serial", action="store_true")
    p.add_argument("--skip-floor", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the temporary courses")
    p.add_argument("--compare-sandbox", action="store_true",
                   help="also grade the class unsandboxed (--sans-bac-a-sable), right before the sandboxed run")
    args = p.parse_args(argv)
    args.serial_per, args.serial_how = None, ""

    cores = os.cpu_count() or 1
    workers = args.workers or cores
    scratch = Path(tempfile.mkdtemp(prefix="tpkit-bench-"))
    sizes = [args.k, 200] if args.class_200 and args.k != 200 else [args.k]
    per_notebook, rows = None, []
    for k in sizes:
        row = grade_class(scratch, k, workers, args, per_notebook)
        per_notebook = row["per_notebook"]
        rows.append(row)
        if args.serial_per is not None:  # the next classes reuse the per-submission cost
            args.serial_how = f"measured on the class of {rows[0]['k']}, extrapolated"
    if len(rows) > 1:
        print("-- how the cost grows", flush=True)
        for row in rows:
            extra = f", wall / floor {row['wall'] / row['floor']:.2f}" if "floor" in row else ""
            print(f"  {row['k']:4d} submissions: wall {row['wall']:.1f} s, {row['wall'] / row['k']:.2f} s per "
                  f"submission{extra}", flush=True)
    print("-- issue #14 targets (2 idle cores, sandbox on)", flush=True)
    for row in rows:
        figures = []
        if "speedup" in row:
            figures.append(f"speed-up vs serial nbgrader autograde (1 thread) {row['speedup']:.2f}x (target >= 2.5)")
        if "ratio_floor" in row:
            figures.append(f"wall / compute-only floor over {os.cpu_count() or 1} cores {row['ratio_floor']:.2f} "
                           "(target <= 1.3)")
        print(f"  {row['k']} submissions: " + "; ".join(figures or ["(floor and serial skipped)"]), flush=True)
    print(f"  {load()}", flush=True)
    if args.keep:
        print(f"kept: {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
