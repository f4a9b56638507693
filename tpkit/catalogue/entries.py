"""What a catalogue entry is: a named change to the perfect submission (the release with the
instructor's solutions), and what grading it must give.

* A *mistake* lists the test cells that must lose points: the first one is the question where the
  mistake is made (its "own" question); `message` is a French fragment that must appear in that
  cell's message (what the student reads); `also_loses` lists further test cells that may lose points,
  each with the written reason why that loss is fair.
* A *variant* is a correct solution written differently: it must get full marks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from tpkit import submissions, vocabulary

Edit = Callable  # nb -> nb


@dataclass(frozen=True)
class Entry:
    name: str
    description: str                                   # French: what the student did
    changes: Mapping[str, Sequence[tuple[str, str]]] = field(default_factory=dict)
    edits: Sequence[Edit] = ()                         # structural changes, applied after `changes`
    loses: Sequence[str] = ()                          # mistakes only; loses[0] = own question
    message: str = ""                                  # mistakes only: French fragment for loses[0]
    also_loses: Mapping[str, str] = field(default_factory=dict)   # qid -> written reason
    kind: str = "mistake"
    keep_experiments: bool = False     # run the ungraded experiment cells (blanked otherwise)

    @property
    def own(self) -> str | None:
        return self.loses[0] if self.loses else None

    def notebook(self, perfect):
        nb = submissions.apply_changes(perfect, self.changes)
        for edit in self.edits:
            nb = edit(nb)
        return nb


def mistake(name, description, changes=None, *, loses, message, also_loses=None, edits=()):
    if isinstance(loses, str):
        loses = (loses,)
    return Entry(name, description, dict(changes or {}), tuple(edits), tuple(loses), message,
                 dict(also_loses or {}), "mistake")


def variant(name, description, changes=None, *, edits=(), keep_experiments=False):
    return Entry(name, description, dict(changes or {}), tuple(edits), (), "", {}, "variant",
                 keep_experiments)


# ------------------------------------------------------------------ structural edits
def stub(gid: str, assignment: str) -> Edit:
    """The answer cell left as released (`raise NotImplementedError()`) in `assignment`'s release."""
    def edit(nb):
        released = {vocabulary.grade_id(c): c.source
                    for c in submissions.blank_submission(assignment=assignment).cells}
        return submissions.replace_sources(nb, {gid: released[gid]})
    edit.__name__ = f"stub({gid})"
    return edit


def replace_cell(gid: str, source: str) -> Edit:
    def edit(nb):
        return submissions.replace_sources(nb, {gid: source})
    edit.__name__ = f"replace({gid})"
    return edit


def move_after(grade_ids: Sequence[str], after: str) -> Edit:
    def edit(nb):
        return submissions.move_cells(nb, grade_ids, after)
    edit.__name__ = f"move({','.join(grade_ids)} after {after})"
    return edit


def insert_after(after: str | None, *sources: str) -> Edit:
    def edit(nb):
        return submissions.insert_code_cells(nb, after, sources)
    edit.__name__ = f"insert(after {after})"
    return edit
