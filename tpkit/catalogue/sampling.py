"""The catalogue sample that the test suite grades (`make test`); `make catalogue` and
`TPKIT_CATALOGUE=full make test` grade every entry.

The sample keeps the first mistake of every question (so each autograded question still proves
that it catches a mistake), the first variant (the solution as released), and a fixed fraction of
the other entries picked by a hash of their names: the same entries every run (a run is
reproducible), and adding an entry never changes which of the others are picked.
"""
from __future__ import annotations

import os
import zlib

# Beyond the per-question mistakes: about one mistake in 10 and one variant in 4 (a wrongly
# penalised correct answer is the costlier error, and variants are fewer).
MISTAKES_ONE_IN = 10
VARIANTS_ONE_IN = 4


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


def for_suite(entries: list) -> list:
    """What a test grades: everything when asked, the sample otherwise."""
    return list(entries) if full_requested() else sample(entries)
