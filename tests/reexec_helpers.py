"""What the re-execution tests share (tests/test_reexec*.py): a source notebook's answer cells run in
this process (no kernel), edited into attacks, and a check's verdict through the witness in untrusted
mode (no cells) or trusted mode (the cells as submitted, so the training cells are re-run)."""
import os
from pathlib import Path

import torch

from tpkit.checks.reexec import RERUN
from tpkit.checks.tools import CheckFailed
from tpkit.submissions import read
from tpkit.vocabulary import grade_id, is_answer, strip_solution_markers as strip_markers
from tpkit.witness import LocalTransport, Witness

SECRET = 0x5EC2E70F7E57C0025EC2E70F7E57C0025EC2E70F  # a pinned course secret (>= 128 bits)


class Notebook:
    """The setup cell and the answer code cells of a source notebook (markers stripped), by grade id."""

    def __init__(self, path):
        nb = read(path)
        self.cells = {"setup": next(c.source for c in nb.cells if grade_id(c) == "setup")}
        self.cells.update({grade_id(c): strip_markers(c.source) for c in nb.cells
                           if is_answer(c) and c.cell_type == "code"})

    def run(self, ns: dict, gid: str, source: str | None = None) -> None:
        """Execute cell `gid` (or `source` in its place) in `ns`, its magics (%...) left out."""
        code = "\n".join(line for line in (source or self.cells[gid]).split("\n") if not line.lstrip().startswith("%"))
        exec(compile(code, gid, "exec"), ns)

    def edit(self, gid: str, *pairs) -> str:
        """Cell `gid` with each (old, new) replaced; each old must stand in it exactly once."""
        source = self.cells[gid]
        for old, new in pairs:
            assert source.count(old) == 1, (gid, old)
            source = source.replace(old, new)
        return source

    def changed(self, changes: dict) -> dict:
        """All the cells, those of `changes` (a catalogue variant's: grade id -> (old, new) pairs) edited."""
        sources = dict(self.cells)
        for gid, pairs in changes.items():
            sources[gid] = self.edit(gid, *pairs)
        return sources

    def namespace(self, folder, gids, sources=None, ns=None) -> dict:
        """`ns` (a new one by default) after the cells `gids` (from `sources`, default the notebook's),
        run in `folder`, where the data files are."""
        sources = sources or self.cells
        ns = {} if ns is None else ns
        old = os.getcwd()
        os.chdir(folder)
        try:
            for gid in gids:
                self.run(ns, gid, sources[gid])
        finally:
            os.chdir(old)
        return ns


def data_folder(tmp_path_factory, name: str, source_dir, files) -> Path:
    """A fresh folder holding the assignment's data `files` (the cells load them from the working
    directory); matplotlib without a display, one torch thread (tests run side by side)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    path = tmp_path_factory.mktemp(name)
    for file in files:
        (path / file).write_bytes((source_dir / file).read_bytes())
    torch.set_num_threads(1)
    return path


def judge(check, ns, cells=None, salt=SECRET):
    """The check's verdict (None: passes) in untrusted mode (cells None) or trusted mode."""
    try:
        check(Witness(LocalTransport(ns), salt=salt, cells=cells))
    except CheckFailed as exc:
        return str(exc)
    return None


def attack(check, ns, cells: dict, gid: str, source: str) -> str:
    """`ns` holds the run of the attack `source` in cell `gid`: it passes the check in untrusted mode
    and fails it in trusted mode with the re-run's message (returned)."""
    assert judge(check, dict(ns)) is None, "the attack should pass without re-execution"
    message = judge(check, ns, dict(cells, **{gid: source}))
    assert message is not None and message.startswith(RERUN), message
    return message
