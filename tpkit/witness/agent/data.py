"""What leaves the kernel is data: a tensor as a detached, dense copy; a repr or an exception's
message as bounded text (computed silenced: a repr is student code too).

Shared by the agent's answers and the re-run's recordings (:mod:`.rerun`).
"""
import torch

from .silence import quiet

MAX_REPR = 200


def safe_repr(value):
    try:
        with quiet():
            return repr(value)[:MAX_REPR]
    except Exception:
        return "<repr impossible>"


def safe_text(exc):
    try:
        return str(exc)[:MAX_REPR * 2]
    except Exception:
        return ""


def tensor_copy(t):
    data = t.detach()
    if data.layout != torch.strided:
        data = data.to_dense()
    return data.cpu().clone().contiguous()
