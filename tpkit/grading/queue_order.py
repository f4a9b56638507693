"""The order in which a run hands its submissions to the workers.

Long and short notebooks in turns (a notebook's size grows with what its student wrote and ran): a long
one keeps a core busy in its kernel while short ones, mostly the workers' own work, keep the other;
sorted longest first, a run ended on a string of short notebooks with a core idle. The last ones are
middle-sized: no long tail either.
"""
from __future__ import annotations

from pathlib import Path


def notebook_size(folder: Path, notebook: str) -> int:
    """Size of a submitted notebook (its link's, never followed; 0 when absent): the order of the queue."""
    try:
        return (folder / f"{notebook}.ipynb").lstat().st_size
    except OSError:
        return 0


def interleaved(items: list) -> list:
    """Largest, smallest, 2nd largest, 2nd smallest... of a list sorted largest first."""
    out, lo, hi = [], 0, len(items) - 1
    while lo <= hi:
        out.append(items[lo])
        if lo != hi:
            out.append(items[hi])
        lo, hi = lo + 1, hi - 1
    return out


def queue_order(jobs: list, notebook: str) -> list:
    """``jobs`` (each with its ``submitted`` folder) in the order they are handed to workers."""
    return interleaved(sorted(jobs, key=lambda j: -notebook_size(j.submitted, notebook)))
