"""Benchmark of the grading command: ``python bench/grading_bench.py [-k 40]`` (``make bench``).

In a temporary copy of the course (fresh release and gradebook), K submissions are laid out by cycling
through the ordinary example submissions (reference, vierge, partiel, erreurs_typiques: the ones plain
nbgrader can grade too; the pathological examples would measure timeouts, not grading). Then:

1. floor: the same notebooks, hidden tests restored as autograde does, executed bare with nbclient,
   one fresh kernel each, ``cores`` at a time; floor = total execution time / cores;
2. ``python -m tpkit.grading --submitted`` on the K submissions (pre-check, autograde, feedback,
   exports: the whole command), wall time;
3. plain serial ``nbgrader autograde`` (one command for the class) on ``--serial-sample`` of them
   (default 10; ``--serial-sample 0`` = all K), per-submission cost extrapolated to K: it grades one
   submission after the other, so its time is linear in K.

Prints seconds per submission, throughput, wall / floor and the speed-up over serial nbgrader. No
assertion: the figures depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    shutil.copytree(paths.SOURCE, dest / "source" / paths.ASSIGNMENT)
    release.generate(root=dest)
    return dest


def lay_out(course: Path, k: int) -> list:
    from tpkit import examples
    built = examples.build(course / "source" / paths.ASSIGNMENT / paths.NOTEBOOK,
                           course / "release" / paths.ASSIGNMENT / paths.NOTEBOOK)
    students = []
    for i in range(k):
        name, data = built[BENCH_SET[i % len(BENCH_SET)]]
        student = f"bench_{i:03d}"
        folder = course / "submitted" / student / paths.ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / name).write_bytes(data)
        students.append(student)
    return students


def _bare_one(args) -> float:
    """Execute one notebook bare: nbclient, a fresh kernel, the assignment's files beside it; return
    the time from kernel start to kernel gone (killed at once: no graceful-shutdown wait counted)."""
    nb_path, course, threads = args
    import nbclient
    import nbformat
    from tpkit import execution
    source = Path(course) / "source" / paths.ASSIGNMENT
    nb = execution.with_hidden_tests(nbformat.read(nb_path, as_version=4), source_nb=source / paths.NOTEBOOK)
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as tmp:
        for f in source.iterdir():
            if f.is_file() and f.suffix != ".ipynb":
                shutil.copy(f, tmp)
        client = nbclient.NotebookClient(nb, timeout=120, allow_errors=True, kernel_name="python3",
                                         shutdown_kernel="immediate", resources={"metadata": {"path": tmp}})
        t0 = time.perf_counter()
        client.execute(env=execution.kernel_env(threads), stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0


def floor(course: Path, students: list, cores: int, threads: int) -> tuple:
    jobs = [(str(course / "submitted" / s / paths.ASSIGNMENT / paths.NOTEBOOK), str(course), threads)
            for s in students]
    t0 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        times = pool.map(_bare_one, jobs, chunksize=1)
    return sum(times), time.perf_counter() - t0


def ours(course: Path, workers: int, sandbox: bool = True) -> float:
    cmd = [sys.executable, "-m", "tpkit.grading", "--submitted", "--root", str(course)]
    if workers:
        cmd += ["--workers", str(workers)]
    if not sandbox:
        cmd += ["--sans-bac-a-sable"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=course, env=env_with_venv(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"grading failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return wall


def serial_nbgrader(course: Path, students: list, sample: int, scratch: Path, threads: int = 0) -> tuple:
    """Plain `nbgrader autograde` of the class on a copy holding `sample` submissions."""
    copy = scratch / "serial"
    copy.mkdir()
    for item in ("nbgrader_config.py", "gradebook.db"):
        shutil.copy(course / item, copy / item)
    for item in ("source", "release"):
        shutil.copytree(course / item, copy / item)
    chosen = students[:sample] if sample else students
    for s in chosen:
        shutil.copytree(course / "submitted" / s, copy / "submitted" / s)
    cmd = [sys.executable, "-m", "nbgrader", "autograde", paths.ASSIGNMENT, "--force", "--log-level=ERROR"]
    env = env_with_venv()
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, len(chosen)


def load() -> str:
    """The machine's load while a phase ran (other processes skew every figure)."""
    return f"[load average {os.getloadavg()[0]:.1f}]"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-k", type=int, default=40, help="number of submissions (default 40)")
    p.add_argument("--workers", type=int, default=0, help="grading workers (default: cores)")
    p.add_argument("--serial-sample", type=int, default=10,
                   help="submissions graded by plain nbgrader (0 = all K; default 10)")
    p.add_argument("--serial-threads", type=int, default=0,
                   help="torch threads of plain nbgrader's kernel (default: its own default, all cores)")
    p.add_argument("--skip-serial", action="store_true")
    p.add_argument("--skip-floor", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the temporary course")
    p.add_argument("--compare-sandbox", action="store_true",
                   help="also grade the class unsandboxed (--sans-bac-a-sable), right before the sandboxed run")
    args = p.parse_args(argv)

    cores = os.cpu_count() or 1
    workers = args.workers or cores
    threads = max(1, cores // workers)
    scratch = Path(tempfile.mkdtemp(prefix="tpkit-bench-"))
    course = make_course(scratch / "course")
    students = lay_out(course, args.k)
    k = len(students)
    print(f"{k} submissions (copies of {', '.join(BENCH_SET)}), {cores} cores, {workers} workers, "
          f"{threads} torch thread(s) per kernel; course in {course}", flush=True)

    if not args.skip_floor:
        total, floor_wall = floor(course, students, cores, threads)
        fl = total / cores
        print(f"floor: bare nbclient, one fresh kernel each, {cores} at a time: {total:.1f} s of execution "
              f"({total / k:.2f} s per notebook) -> floor {fl:.1f} s (its own wall: {floor_wall:.1f} s) {load()}",
              flush=True)

    if args.compare_sandbox:
        bare = ours(course, workers, sandbox=False)
        print(f"tpkit.grading --sans-bac-a-sable: wall {bare:.1f} s = {bare / k:.2f} s per submission {load()}",
              flush=True)
    wall = ours(course, workers)
    if args.compare_sandbox:
        print(f"tpkit.grading (sandboxed): wall {wall:.1f} s = {wall / k:.2f} s per submission -> "
              f"sandbox overhead {100 * (wall / bare - 1):+.1f} % (target <= +15 %) {load()}", flush=True)
    report = json.loads((course / "exports" / "grading_report.json").read_text())
    statuses = {}
    for r in report["results"].values():
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    print(f"tpkit.grading: wall {wall:.1f} s = {wall / k:.2f} s per submission, "
          f"{60 * k / wall:.1f} submissions/min (statuses: {statuses}); the grading process itself used "
          f"{report['own_cpu_seconds']:.1f} s of CPU ({report['own_cpu_seconds'] / k:.2f} s per submission) {load()}",
          flush=True)
    if not args.skip_floor:
        print(f"  wall / floor = {wall / fl:.2f} (target <= 1.5)", flush=True)

    if not args.skip_serial:
        s_wall, n = serial_nbgrader(course, students, args.serial_sample, scratch, args.serial_threads)
        per = s_wall / n
        extrapolated = per * k
        how = "measured on all" if n == k else f"measured on {n}, extrapolated to {k}"
        threads_note = f", {args.serial_threads} torch thread(s)" if args.serial_threads else ""
        print(f"serial nbgrader autograde{threads_note}: {per:.2f} s per submission ({how}: {extrapolated:.0f} s) "
              f"-> speed-up {extrapolated / wall:.2f}x (target >= 1.8) {load()}", flush=True)

    if args.keep:
        print(f"kept: {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
