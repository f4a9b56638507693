"""Student code that the agent calls runs silenced: what it prints goes nowhere.

Apart from the agent's requests because every request uses it (a repr, a property, a call of the
student's function) and because it works on file descriptors and the C library, not on namespaces.
Self-contained like the whole agent package (standard library only).
"""
import contextlib
import io
import os
import warnings


@contextlib.contextmanager
def quiet():
    """Student code called for the grader writes nowhere, and what it writes is discarded, never shown:
    `sys.stdout` / `sys.stderr` are buffers thrown away, and the file descriptors 1 and 2 (where
    `sys.__stdout__`, `os.write(1, ...)` and C code write, and which ipykernel would forward to the next
    cell's output) point to /dev/null until the call returns. A function that prints the check's
    inputs shows them to nobody. A warning is no mistake."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _descriptors_discarded(), contextlib.redirect_stderr(io.StringIO()), \
                contextlib.redirect_stdout(io.StringIO()):
            yield


_LIBC = []  # the C library, loaded on first use (its stdio buffers are flushed before fds come back)


def _flush_buffers():
    import sys
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass
    try:
        if not _LIBC:
            import ctypes
            _LIBC.append(ctypes.CDLL(None))
        _LIBC[0].fflush(None)
    except Exception:
        pass


@contextlib.contextmanager
def _descriptors_discarded():
    saved = []
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        null = None
    try:
        if null is not None:
            _flush_buffers()  # what was written before the call keeps its way out
            for fd in (1, 2):
                try:
                    copy = os.dup(fd)
                except OSError:
                    continue
                saved.append((fd, copy))
                os.dup2(null, fd)
        yield
    finally:
        if saved:
            _flush_buffers()  # what the call left in buffers goes to /dev/null too
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        if null is not None:
            os.close(null)

