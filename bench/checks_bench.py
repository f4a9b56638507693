"""Time of the hidden checks on the instructor's solution, next to the time of the notebook itself:
`python bench/checks_bench.py [--repeat 1]`. Runs the solution's cells in this process (the checks in
untrusted mode, over the in-process witness), timing each `verifier(...)` call apart from the
student code. Prints per-question seconds and the totals (the checks' share of a submission's time)."""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import time

import matplotlib

MAIN = "tp_reseaux_neurones"  # the course's main assignment

matplotlib.use("Agg")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    import torch
    torch.set_num_threads(1)
    from tpkit import paths, submissions, vocabulary
    from tpkit.checks import verifier
    nb = submissions.read(paths.source_notebook(MAIN))
    for _ in range(args.repeat):
        ns, check_s, code_s, per = {}, 0.0, 0.0, {}
        os.chdir(paths.source_dir(MAIN))
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            src = vocabulary.strip_solution_markers(cell.source)
            src = re.sub(r"^%.*$", "", src, flags=re.M)
            calls = re.findall(r'verifier\("(\w+)", globals\(\)\)', src)
            src = re.sub(r'^.*verifier\(.*$|^from tpkit.checks import verifier$|^### .*HIDDEN TESTS$', "",
                         src, flags=re.M)
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(src, "cell", "exec"), ns)
            code_s += time.perf_counter() - t0
            for qid in calls:
                t0 = time.perf_counter()
                verifier(qid, ns)
                per[qid] = time.perf_counter() - t0
                check_s += per[qid]
        for qid, s in per.items():
            print(f"{qid:24s} {s:7.3f} s")
        print(f"checks: {check_s:.2f} s   notebook code: {code_s:.2f} s   "
              f"checks share: {check_s / (check_s + code_s):.1%}")


if __name__ == "__main__":
    main()
