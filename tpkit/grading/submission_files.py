"""A submission folder read as hostile input: every entry seen without following links
(:func:`walk`, :func:`scan`), a file read never through a link and never past a size
(:func:`read_bytes_nofollow`), a notebook parsed only when it is small and shallow enough
(:func:`read_notebook`: French reasons otherwise). The pre-check's staging (:mod:`tpkit.grading.staging`) and a
cluster machine's packing (:mod:`tpkit.grading.remote`) see the same folder through these."""
from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np

from tpkit.grading.inert import inert

SKIPPED_DIRS = {".ipynb_checkpoints", "__MACOSX", "__pycache__"}

#: Largest notebook that is graded (bytes); a bigger one is *failed* before it is read.
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
#: Entries of a submission folder looked at (a folder of a million files is not walked to its end).
MAX_SCANNED = 10_000
#: Nesting of a notebook's JSON (lists and objects) that is read: Python's parsers recurse, and 100,000
#: nested arrays in a cell's metadata raised RecursionError out of the pre-check (the whole class failed).
#: nbformat's own structure is 6 levels deep; rich outputs (JSON, widgets) a few more.
MAX_JSON_DEPTH = 100
#: Cells of a notebook that is read at all (nbformat's validation alone costs ~0.4 ms per cell).
MAX_CELLS_READ = 10_000


def format_mo(nbytes: float) -> str:
    """Bytes in French megabytes (2**20): '20 Mo', '1,5 Mo'."""
    text = f"{nbytes / 2**20:.1f}".replace(".", ",")
    return (text[:-2] if text.endswith(",0") else text) + " Mo"


def printable(text: str, limit: int = 120) -> str:
    """A student-chosen name as it can be shown in a status or a page (control characters escaped)."""
    return inert(text, limit)


@dataclass
class Entry:
    """One entry of a submission folder, seen without following links."""

    rel: str  # POSIX path relative to the submission folder
    kind: str  # file | dir | link | other (fifo, socket, device)
    size: int = 0
    target: str = ""  # what a link points to (never followed)

    def describe(self) -> str:
        name = printable(self.rel)
        if self.kind == "link":
            return f"{name} (lien → {printable(self.target)})"
        if self.kind == "other":
            return f"{name} (fichier spécial)"
        return name


def walk(folder: Path):
    """(relative POSIX path, path, ``lstat`` result) of every entry under ``folder`` at any depth,
    depth-first in name order. A link is never entered; checkpoint and cache folders
    (:data:`SKIPPED_DIRS`) are neither entered nor given; an entry that cannot be read is left out.
    The one walk of a submission folder: :func:`scan` here, :func:`tpkit.grading.remote.pack` for a
    machine of a cluster (which must see what the pre-check sees)."""
    stack = [(Path(folder), "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        for child in children:
            rel = prefix + child.name
            try:
                st = child.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if child.name in SKIPPED_DIRS:
                    continue
                stack.append((Path(child.path), rel + "/"))
            yield rel, child.path, st
        stack.sort(key=lambda item: item[1], reverse=True)  # depth-first, in name order


def entry_kind(st: os.stat_result) -> str:
    """An :class:`Entry`'s kind from an ``lstat`` result."""
    if stat.S_ISLNK(st.st_mode):
        return "link"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    return "file" if stat.S_ISREG(st.st_mode) else "other"


def link_target(path: str) -> str:
    """What a link points to, read and never followed ('?' when it cannot be read)."""
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def scan(folder: Path, limit: int = MAX_SCANNED) -> tuple:
    """(entries, complete): everything under ``folder`` as :func:`walk` gives it, as :class:`Entry`
    objects; ``complete`` is False when ``limit`` entries were seen before the end."""
    entries = []
    for rel, path, st in walk(folder):
        if len(entries) >= limit:
            return entries, False
        what = entry_kind(st)
        entries.append(Entry(rel, what, size=st.st_size if what == "file" else 0,
                             target=link_target(path) if what == "link" else ""))
    return entries, True


def is_link(path: Path) -> bool:
    return os.path.islink(path)


def is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def notebook_candidates(folder: Path) -> list:
    """Notebooks handed in, at any depth, skipping checkpoints, hidden files and links (regular files
    only)."""
    out = []
    for e in scan(folder)[0]:
        parts = e.rel.split("/")
        if e.kind != "file" or not e.rel.endswith(".ipynb") or any(p.startswith(".") for p in parts):
            continue
        out.append(folder / e.rel)
    return sorted(out)


def read_bytes_nofollow(path: Path, limit: int) -> bytes:
    """The content of the regular file ``path``, never through a symbolic link (``OSError`` ELOOP),
    at most ``limit`` + 1 bytes (more than ``limit``: the file is too big)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "pas un fichier ordinaire")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def json_depth(raw: bytes) -> int:
    """How deep the lists and objects of a JSON text nest, without parsing it: a few linear passes of
    numpy over its bytes (a quote preceded by an odd run of backslashes is escaped; the brackets between
    an odd and an even unescaped quote are in a string). An invalid text gives some number, never an
    error, and no text costs more than its length (20 MB of quotes or brackets: under a second)."""
    codes = np.frombuffer(raw, dtype=np.uint8)
    if not codes.size:
        return 0
    index = np.arange(codes.size, dtype=np.int32)
    run = np.where(codes == ord("\\"), np.int32(-1), index)
    np.maximum.accumulate(run, out=run)  # the last position that is not a backslash, so far
    np.subtract(index, run, out=run)  # backslashes ending at each position (0 where it is not one)
    del index  # (20 MB of text: about 250 MB at the peak)
    escaped = np.zeros(codes.size, dtype=bool)
    escaped[1:] = (run[:-1] % 2) == 1
    del run
    quote = (codes == ord('"')) & ~escaped
    outside = (np.cumsum(quote, dtype=np.int32) % 2) == 0
    steps = (((codes == ord("[")) | (codes == ord("{"))) & outside).astype(np.int8) \
        - (((codes == ord("]")) | (codes == ord("}"))) & outside).astype(np.int8)
    return max(0, int(np.cumsum(steps, dtype=np.int32).max()))


def read_notebook(path: Path) -> tuple:
    """(notebook, None) or (None, French reason). A link is not followed; a notebook over
    :data:`MAX_NOTEBOOK_BYTES`, nesting deeper than :data:`MAX_JSON_DEPTH` or with more than
    :data:`MAX_CELLS_READ` cells is not parsed further."""
    name = printable(path.name)
    try:
        size = os.lstat(path).st_size
        if is_link(path):
            raise OSError(errno.ELOOP, "")
        if size > MAX_NOTEBOOK_BYTES:
            return None, (f"fichier {name} trop volumineux ({format_mo(size)}, limite "
                          f"{format_mo(MAX_NOTEBOOK_BYTES)} : sorties trop longues ou images ?)")
        raw = read_bytes_nofollow(path, MAX_NOTEBOOK_BYTES)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, f"fichier {name} : lien symbolique (non suivi)"
        return None, f"fichier {name} illisible ({exc.strerror})"
    if len(raw) > MAX_NOTEBOOK_BYTES:
        return None, (f"fichier {name} trop volumineux (plus de {format_mo(MAX_NOTEBOOK_BYTES)} : "
                      "sorties trop longues ou images ?)")
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        return None, (f"notebook {name} illisible : imbrication trop profonde ({depth} niveaux de listes ou "
                      f"d'objets JSON, limite {MAX_JSON_DEPTH})")
    try:
        text = raw.decode("utf-8-sig")
        content = json.loads(text)
    except UnicodeDecodeError:
        return None, f"fichier {name} illisible (encodage non UTF-8)"
    except json.JSONDecodeError as exc:
        size = "vide" if not raw.strip() else f"JSON invalide ligne {exc.lineno}, fichier tronqué ?"
        return None, f"fichier {name} illisible ({size})"
    cells = content.get("cells") if isinstance(content, dict) else None
    if isinstance(cells, list) and len(cells) > MAX_CELLS_READ:
        return None, f"notebook {name} illisible : {len(cells)} cellules (limite {MAX_CELLS_READ})"
    try:
        nb = nbformat.reads(text, as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no cells")
    except Exception:
        return None, f"{name} n'est pas un notebook Jupyter valide"
    return nb, None
