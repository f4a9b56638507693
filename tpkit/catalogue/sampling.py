"""The catalogue sample that the test suite grades (`make test`); `make catalogue` and
`TPKIT_CATALOGUE=full make test` grade every entry.

The sample keeps the first mistake of every question (so each autograded question still proves
that it catches a mistake), the first variant (the solution as released), and a fixed fraction of
the other entries picked by a hash of their names: the same entries every run (a run is
reproducible), and adding an entry never changes which of the others are picked. A test may add
entries it needs by name (`for_suite(entries, also=...)`: the suite's fidelity test reads its five
entries from the sample's run instead of grading them again).
"""
from __future__ import annotations

import os
import zlib

# Beyond the per-question mistakes: about one mistake in 40 and one variant in 8 (a wrongly
# penalised correct answer is the costlier error, and variants are fewer).
MISTAKES_ONE_IN = 40
VARIANTS_ONE_IN = 8


def full_requested() -> bool:
    """True when the environment asks for the whole catalogue (TPKIT_CATALOGUE=full)."""
    return os.environ.get("TPKIT_CATALOGUE", "").strip().lower() == "full"


def picked(name: str, one_in: int) -> bool:
    return zlib.crc32(name.encode("utf-8")) % one_in == 0


def sample(entries: list) -> list:
    """The sampled entries, in catalogue order."""
    chosen, questions, first_variant = [], set(), True
    for e in entries:
        keep = picked(e.name, VARIANTS_ONE_IN if e.kind == "variant" else MISTAKES_ONE_IN)
        if e.kind == "mistake" and e.own not in questions:
            questions.add(e.own)
            keep = True
        if e.kind == "variant" and first_variant:
            first_variant, keep = False, True
        if keep:
            chosen.append(e)
    return chosen


def for_suite(entries: list, also=()) -> list:
    """What a test grades: everything when asked, otherwise the sample and the entries named in
    `also`, in catalogue order."""
    if full_requested():
        return list(entries)
    unknown = set(also) - {e.name for e in entries}
    if unknown:
        raise ValueError(f"unknown catalogue entries: {sorted(unknown)}")
    chosen = {e.name for e in sample(entries)} | set(also)
    return [e for e in entries if e.name in chosen]
