"""The environment of the processes the kit starts: one definition of each, used everywhere.

* :func:`venv_on_path`: nbgrader's commands and the kernels need the virtual environment's executables
  (``alembic``, ``jupyter``, ``python``) first on ``PATH``;
* :func:`kernel_variables`: what every kernel that runs a notebook gets (grading, catalogue, tests):
  one BLAS/OpenMP thread count (kernels run side by side; two threads per kernel on two busy cores made
  training ten times slower), ``NBGRADER_EXECUTION=autograde`` as ``nbgrader autograde`` sets it, a
  fixed hash seed and the inline matplotlib backend.
"""
from __future__ import annotations

import os
import sys
from typing import Mapping, Optional


def venv_on_path(env: Optional[Mapping[str, str]] = None) -> dict:
    """A copy of ``env`` (default: this process's environment) with the venv's ``bin`` first on PATH."""
    env = dict(os.environ if env is None else env)
    bindir = os.path.dirname(sys.executable)
    if not env.get("PATH", "").startswith(bindir + os.pathsep):
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


#: the variables that set the BLAS/OpenMP thread counts of a kernel
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def kernel_variables(threads: int = 1) -> dict:
    """Variables set in every notebook kernel the kit starts (see the module docstring)."""
    threads = str(max(1, int(threads)))
    return dict(NBGRADER_EXECUTION="autograde", PYTHONHASHSEED="0", **{k: threads for k in THREAD_VARIABLES},
                MPLBACKEND="module://matplotlib_inline.backend_inline")
