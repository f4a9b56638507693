"""Restart & Run All of a complete student notebook, as a student's JupyterLab runs it: alone, and four
at once (four students on one shared 2-core machine), for today's release (`main`) and this checkout.

    python bench/student_runtime.py [--ref main] [--only new|ref] [--timeout 900]

A complete notebook is the release with the instructor's solutions in the answer cells (visible checks
only). Kernels get the environment a student has: no OMP_NUM_THREADS / MKL_NUM_THREADS, so torch uses
its default thread count unless the notebook's setup cell chooses one. Prints seconds per run (the
four-at-once line gives each run's time) side by side; the targets (issue #10): alone <= 15 s, four at
once <= 45 s each.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAIN = "tp_reseaux_neurones"  # the course's main assignment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tpkit import paths, submissions  # noqa: E402

STUDENT_ENV_DROP = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY")


def complete_notebook(ref: str | None, folder: Path) -> Path:
    """The complete notebook of `ref` (a git revision) or of the working tree (None), in `folder`."""
    folder.mkdir(parents=True)
    if ref is None:
        source, release = paths.source_notebook(MAIN), paths.release_notebook(MAIN)
    else:
        source, release = folder / "source.ipynb", folder / "release.ipynb"
        for rel, out in ((paths.source_notebook(MAIN), source), (paths.release_notebook(MAIN), release)):
            out.write_bytes(subprocess.run(["git", "show", f"{ref}:{rel.relative_to(paths.ROOT)}"],
                                           cwd=paths.ROOT, capture_output=True, check=True).stdout)
    nb = submissions.solution_submission(source, release)
    out = folder / paths.notebook_name(MAIN)
    import nbformat
    nbformat.write(nb, str(out))
    for f in paths.source_dir(MAIN).iterdir():
        if f.is_file() and f.suffix != ".ipynb":
            shutil.copy(f, folder)
    return out


def run_one(notebook: Path, timeout: int) -> float:
    """Seconds for a fresh kernel to run every cell (what Restart & Run All costs)."""
    env = {k: v for k, v in os.environ.items() if k not in STUDENT_ENV_DROP}
    code = ("import sys, time, nbclient, nbformat\n"
            "nb = nbformat.read(sys.argv[1], as_version=4)\n"
            "t = time.perf_counter()\n"
            "nbclient.NotebookClient(nb, timeout=int(sys.argv[2]), kernel_name='python3', allow_errors=True,\n"
            "    resources={'metadata': {'path': sys.argv[3]}}).execute()\n"
            "errors = [o.ename for c in nb.cells if c.cell_type == 'code' for o in c.outputs if o.output_type == 'error']\n"
            "print(time.perf_counter() - t, len(errors))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(notebook), str(timeout), str(notebook.parent)],
                          env=env, capture_output=True, text=True, timeout=timeout + 60)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    seconds, errors = proc.stdout.split()[-2:]
    if int(errors):
        print(f"  warning: {errors} cell(s) with an error in {notebook}", file=sys.stderr)
    return float(seconds)


def run_many(notebooks: list, timeout: int) -> list:
    with concurrent.futures.ThreadPoolExecutor(len(notebooks)) as pool:
        return list(pool.map(lambda nb: run_one(nb, timeout), notebooks))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ref", default="main", help="git revision of today's release (default: main)")
    p.add_argument("--only", choices=("new", "ref"), help="measure one side only")
    p.add_argument("--timeout", type=int, default=900, help="seconds per run (default 900)")
    args = p.parse_args(argv)
    sides = [("ref", args.ref), ("new", None)]
    if args.only:
        sides = [s for s in sides if s[0] == args.only]
    rows = []
    with tempfile.TemporaryDirectory(prefix="tp-student-bench-") as tmp:
        for name, ref in sides:
            label = f"{ref} (today)" if ref else "this checkout"
            nbs = [complete_notebook(ref, Path(tmp) / f"{name}{i}") for i in range(4)]
            run_one(nbs[0], args.timeout)            # warm-up: imports and caches, as a second run would
            alone = run_one(nbs[0], args.timeout)
            t0 = time.perf_counter()
            four = run_many(nbs, args.timeout)
            rows.append((label, alone, four, time.perf_counter() - t0))
            print(f"{label}: alone {alone:.1f} s; four at once {', '.join(f'{s:.1f}' for s in four)} s", flush=True)
    print(f"\ncores: {os.cpu_count()}; load average before the last run: {os.getloadavg()[0]:.1f}")
    print(f"{'release':<22}{'alone (s)':>11}{'four at once, max (s)':>24}")
    for label, alone, four, _ in rows:
        print(f"{label:<22}{alone:>11.1f}{max(four):>24.1f}")
    print("targets: alone <= 15 s, four at once <= 45 s each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
