"""Pairs of suspiciously similar submissions, for the instructor to look at (never a penalty).

Each student's answer cells (nbgrader ``solution`` code cells) are reduced to tokens: comments and
whitespace dropped, strings replaced by one token, and every name the student chose replaced by one
placeholder (names of the statement and of the libraries' attributes are kept: ``pred``, ``.mm``).
The shared skeleton (lines of the student release's version of the cell) is removed first, so two
students who wrote nothing are not "similar". Two submissions are compared by their k-grams of
tokens, each k-gram tagged with its cell (a MOSS-like fingerprint, fast enough for every pair of a
class of hundreds): the share of k-grams they have in common (Jaccard).
"""
from __future__ import annotations

import io
import keyword
import tokenize
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Optional

import nbformat

#: below this many tokens (after the skeleton is removed) a submission is not compared: a near-blank
#: notebook is similar to every other near-blank one.
MIN_TOKENS = 60
#: share of common k-grams (Jaccard) from which a pair is listed
THRESHOLD = 0.8
#: k-gram length, in tokens
K = 5


def _tokens(source: str, kept_names: frozenset) -> list:
    out = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return source.split()
    previous = None
    for tok in tokens:
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                        tokenize.ENDMARKER):
            continue
        if tok.type == tokenize.STRING or tok.type in (getattr(tokenize, "FSTRING_START", -1),):
            out.append("S")
        elif tok.type == tokenize.NAME:
            name = tok.string
            attribute = previous is not None and previous.string == "."
            out.append(name if keyword.iskeyword(name) or attribute or name in kept_names else "_")
        else:
            out.append(tok.string)
        previous = tok
    return out


def _lines(source: str) -> list:
    return [line for line in source.split("\n") if line.strip()]


def _answer_cells(nb) -> dict:
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("solution")
            and c.metadata["nbgrader"].get("grade_id")}


@dataclass
class Pair:
    a: str
    b: str
    score: float
    cells: list = field(default_factory=list)  # [(grade id, ratio)], most similar first


@dataclass
class Submission:
    student: str
    cells: dict  # grade id -> original source
    tokens: dict  # grade id -> normalised tokens (skeleton removed)

    @property
    def size(self) -> int:
        return sum(len(t) for t in self.tokens.values())


def load(student: str, notebook: Path, skeleton: dict, kept_names: frozenset) -> Optional[Submission]:
    """The student's answer cells, normalised; None when the notebook cannot be read."""
    try:
        nb = nbformat.read(str(notebook), as_version=4)
    except Exception:
        return None
    cells = _answer_cells(nb)
    tokens = {}
    for gid, source in cells.items():
        shared = {line.strip() for line in _lines(skeleton.get(gid, ""))}
        own = "\n".join(line for line in source.split("\n") if line.strip() not in shared)
        tokens[gid] = _tokens(own, kept_names)
    return Submission(student, cells, tokens)


def release_skeleton(release_notebook: Path) -> tuple:
    """({grade id: the release's answer cell}, names of the release (the statement's names))."""
    nb = nbformat.read(str(release_notebook), as_version=4)
    names = set()
    for cell in nb.cells:
        if cell.cell_type == "code":
            try:
                names |= {t.string for t in tokenize.generate_tokens(io.StringIO(cell.source + "\n").readline)
                          if t.type == tokenize.NAME}
            except (tokenize.TokenError, IndentationError, SyntaxError):
                pass
    return _answer_cells(nb), frozenset(names)


def shingles(sub: Submission, k: int = K) -> set:
    """The submission's k-grams of normalised tokens, each tagged with its cell (MOSS-like)."""
    out = set()
    for gid, tokens in sub.tokens.items():
        if 0 < len(tokens) < k:
            out.add(hash((gid, tuple(tokens))))
        out.update(hash((gid, tuple(tokens[i:i + k]))) for i in range(len(tokens) - k + 1))
    return out  # hashes: set operations on ints are several times faster than on tuples


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def similar_pairs(subs: list, threshold: float = THRESHOLD, min_tokens: int = MIN_TOKENS) -> list:
    """Pairs whose share of common k-grams (Jaccard) is at least ``threshold``, most similar first;
    each with its cells' own shares, most similar first (for the side-by-side view)."""
    big = [s for s in subs if s.size >= min_tokens]
    grams = {s.student: shingles(s) for s in big}
    pairs = []
    for a, b in combinations(big, 2):
        ga, gb = grams[a.student], grams[b.student]
        if min(len(ga), len(gb)) < threshold * max(len(ga), len(gb)):
            continue  # sizes alone rule it out
        score = _jaccard(ga, gb)
        if score >= threshold:
            cells = []
            for gid in sorted(set(a.tokens) | set(b.tokens)):
                ca = shingles(Submission(a.student, {}, {gid: a.tokens.get(gid, [])}))
                cb = shingles(Submission(b.student, {}, {gid: b.tokens.get(gid, [])}))
                if ca or cb:
                    cells.append((gid, round(_jaccard(ca, cb), 3)))
            cells.sort(key=lambda c: -c[1])
            pairs.append(Pair(a.student, b.student, round(score, 3), cells))
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return pairs
