"""Decoding budget of a witness answer: what the grader agrees to unpack from one answer file.

An answer is ``torch.save`` bytes written by the kernel, i.e. by code the student controls (the agent
can be replaced in the kernel). The size cap on the file does not bound what the bytes *mean*: a
pickle may reference one object many times (a 7 kB DAG of lists expands to 2**60 paths: +52 s of
decoding), a tensor may view its storage with stride 0 (1.8 kB that read as 40 GB once copied: the
grader hit its memory cap), many tensors may view one storage. The honest agent sends none of these
(contiguous copies, lists of at most 100,001 items nested 4 deep), so the budget is counted the way a
check will use the answer, before anything is copied:

* before unpickling (:func:`check_archive`): the file must be a zip archive as ``torch.save`` writes
  it (stored entries, their sizes summing under the file cap) and its pickle is scanned opcode by
  opcode with a cap on opcodes, on memo references and on the unpickler's stack height;
* after unpickling (:func:`check_value`, iterative): every *reference* is counted, so a shared object
  counts as often as it is reached (that is what decoding it will cost); nesting depth; tensors count
  their logical elements and bytes from their shape, so a stride-0 or shared view counts as the copy
  decoding makes of it.

Over budget: :class:`OverBudget`, whose message is French.
"""
from __future__ import annotations

import io
import pickletools
import zipfile

import torch

#: Bytes of an answer file; also the bytes its values may take once expanded (an honest answer is made
#: of contiguous copies: what it holds takes no more than the file).
MAX_BYTES = 256 * 1024 * 1024
#: Tensor elements of one answer, all tensors summed (64 M float32 values = MAX_BYTES).
MAX_ELEMENTS = 64 * 1024 * 1024
#: References to containers, numbers, strings and tensors, counted each time they are reached (the
#: honest agent's largest answer, a list of 100,001 numbers, has about 500,000 with the dicts' keys).
MAX_REFERENCES = 1_000_000
#: Nesting of containers (the honest agent's answers nest at most ~12 deep).
MAX_DEPTH = 64
#: Opcodes of the pickle, memo reads among them, and objects on the unpickler's stack (the pickler
#: appends items by batches of 1,000; each level of nesting keeps one object on the stack).
MAX_OPCODES = 4_000_000
MAX_MEMO_GETS = MAX_REFERENCES
MAX_STACK = 5_000

_MEMO_GETS = {"GET", "BINGET", "LONG_BINGET"}
_SCALARS = {float, bool, type(None), complex}


class OverBudget(Exception):
    """The answer exceeds the decoding budget (French message)."""


def _fr(n: int) -> str:
    return f"{n:,}".replace(",", "\u202f")


def check_archive(data: bytes) -> None:
    """Raise OverBudget unless ``data`` is a ``torch.save`` zip archive within the budget (no object is
    built: only the zip directory and the pickle's opcodes are read)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise OverBudget("format inconnu (pas une archive torch.save)") from None
    pickles = [e for e in entries if e.filename.count("/") == 1 and e.filename.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise OverBudget("format inconnu (archive sans données)")
    if any(e.compress_type != zipfile.ZIP_STORED for e in entries):
        raise OverBudget("archive compressée (torch.save n'en écrit pas)")
    expanded = sum(e.file_size for e in entries)
    if expanded > MAX_BYTES:
        raise OverBudget(f"{_fr(expanded)} octets une fois décompressée (limite {_fr(MAX_BYTES)})")
    try:
        scan_pickle(archive.read(pickles[0]))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        if isinstance(exc, OverBudget):
            raise
        raise OverBudget("format inconnu (pickle illisible)") from None


def scan_pickle(pkl: bytes) -> None:
    """Raise OverBudget when the pickle has too many opcodes or memo reads, or stacks too many objects
    (deep nesting); ValueError when it is malformed. Linear, nothing is built."""
    opcodes = gets = height = top = 0
    marks = []
    for op, _, _ in pickletools.genops(pkl):
        opcodes += 1
        if opcodes > MAX_OPCODES:
            raise OverBudget(f"plus de {_fr(MAX_OPCODES)} instructions de pickle")
        if op.name in _MEMO_GETS:
            gets += 1
            if gets > MAX_MEMO_GETS:
                raise OverBudget(f"plus de {_fr(MAX_MEMO_GETS)} références partagées")
        if op.name == "MARK":
            marks.append(height)
            continue
        if pickletools.markobject in op.stack_before:
            if not marks:
                raise ValueError("mark missing")
            height = marks.pop() - op.stack_before.index(pickletools.markobject)
        else:
            height -= len(op.stack_before)
        height += len(op.stack_after)
        top = max(top, height + len(marks))  # a bare MARK stacks nothing but a mark
        if top > MAX_STACK:
            raise OverBudget(f"imbrication trop profonde (plus de {_fr(MAX_STACK)} objets empilés)")


def check_value(value) -> None:
    """Raise OverBudget when decoding ``value`` (an unpickled answer) would go over the budget: every
    reference counted (a shared object each time it is reached), depth, tensor elements and bytes
    counted from shapes (a stride-0 or shared view counts as the copy decoding makes). Iterative, and
    stops at the first limit reached: never more than MAX_REFERENCES steps."""
    references = elements = nbytes = 0
    todo = [(value, 0)]
    while todo:
        obj, depth = todo.pop()
        references += 1
        if references > MAX_REFERENCES:
            raise OverBudget(f"plus de {_fr(MAX_REFERENCES)} valeurs (objets partagés ou listes géantes)")
        if depth > MAX_DEPTH:
            raise OverBudget(f"imbrication trop profonde (plus de {MAX_DEPTH} niveaux)")
        if isinstance(obj, torch.Tensor):
            try:
                numel = 1
                for n in obj.shape:
                    numel *= int(n)
                itemsize = obj.element_size()
            except Exception:  # a tensor kind the checks never receive (nested, ...)
                raise OverBudget("tenseur d'un genre non pris en charge") from None
            elements += numel
            nbytes += numel * itemsize
        elif isinstance(obj, (dict, list, tuple, set, frozenset)):
            if references + len(todo) + 2 * len(obj) > MAX_REFERENCES:  # each item will count
                raise OverBudget(f"plus de {_fr(MAX_REFERENCES)} valeurs (objets partagés ou listes géantes)")
            nbytes += 8 * len(obj)
            items = list(obj.keys()) + list(obj.values()) if isinstance(obj, dict) else obj
            for item in items:
                if type(item) in _SCALARS:  # counted here: most items of a long list are numbers
                    references += 1
                else:
                    todo.append((item, depth + 1))
        elif isinstance(obj, (str, bytes, bytearray)):
            nbytes += len(obj)
        elif isinstance(obj, int):
            nbytes += obj.bit_length() // 8
        if elements > MAX_ELEMENTS:
            raise OverBudget(f"plus de {_fr(MAX_ELEMENTS)} éléments de tenseurs (vues répétées d'un même "
                             "stockage ?)")
        if nbytes > MAX_BYTES:
            raise OverBudget(f"plus de {_fr(MAX_BYTES)} octets une fois développée (tenseurs à pas nul ou "
                             "partagés ?)")
