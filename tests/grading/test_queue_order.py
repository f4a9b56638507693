"""The order in which a run hands its submissions to the workers (tpkit.grading.queue_order)."""
import os
from types import SimpleNamespace

from tpkit.grading import queue_order


def test_queue_alternates_long_and_short_notebooks():
    """Long notebooks keep the kernels busy while short ones keep the grading process busy: taken in
    turns, the two kinds overlap (largest first alone left a run ending on many short notebooks that
    wait for the grading process with a core idle)."""
    assert queue_order.interleaved([9, 8, 7, 3, 2, 1]) == [9, 1, 8, 2, 7, 3]
    assert queue_order.interleaved([5, 4, 3]) == [5, 3, 4]
    assert queue_order.interleaved([1]) == [1] and queue_order.interleaved([]) == []


def test_the_queue_takes_the_largest_notebook_then_the_smallest(tmp_path):
    """Sizes read from the submitted notebooks themselves: a missing notebook counts as empty, a link
    by its own size (never followed)."""
    jobs = []
    for name, size in (("moyen", 500), ("grand", 900), ("petit", 100), ("absent", None), ("lien", None)):
        folder = tmp_path / name
        folder.mkdir()
        if size is not None:
            (folder / "tp.ipynb").write_bytes(b"x" * size)
        jobs.append(SimpleNamespace(student=name, submitted=folder))
    big = tmp_path / "enorme.ipynb"
    big.write_bytes(b"x" * 10_000)
    os.symlink("../enorme.ipynb", tmp_path / "lien" / "tp.ipynb")  # a link of 15 bytes to 10,000
    assert queue_order.notebook_size(tmp_path / "lien", "tp") == len("../enorme.ipynb")
    assert queue_order.notebook_size(tmp_path / "absent", "tp") == 0
    # by size: grand 900, moyen 500, petit 100, lien 15, absent 0
    assert [j.student for j in queue_order.queue_order(jobs, "tp")] == ["grand", "absent", "moyen", "lien", "petit"]
