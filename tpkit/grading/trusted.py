"""Trusted checks: the hidden tests run in the grading process, the kernel only answers questions.

A test cell restored from the gradebook reads::

    ### BEGIN HIDDEN TESTS
    from tpkit.checks import verifier
    verifier("q2_pred", globals())
    ### END HIDDEN TESTS
    assert ...visible checks...

:func:`plan` splits it into segments run in order: the hidden ``verifier`` lines become *check*
segments, run here by :func:`tpkit.checks.run_check` over a :class:`KernelTransport`; the visible lines
are sent to the kernel as usual (they can only lose points). A hidden region may hold nothing else:
anything sent to the kernel could be read and printed back by the student's code.

:class:`KernelTransport` carries the witness protocol's bytes through files of the kernel's exchange
folder (shared with the sandbox and nothing else); one execute request per check runs the agent's
session, which takes the names of the request files from a FIFO.
Answers are read without following links, from regular files only, under a size cap, and decoded with
``torch.load(weights_only=True)``: data, never code, within a decoding budget (:mod:`tpkit.witness.budget`:
an answer that expands beyond it fails its check only, and is flagged).
"""
from __future__ import annotations

import os
import re
import secrets
import select
import stat
import time
from pathlib import Path
from typing import Optional, Protocol

from tpkit.vocabulary import BEGIN_HIDDEN, hidden_marker
from tpkit.witness import MAX_ANSWER_BYTES, WitnessError, dumps, loads

AGENT_MODULE = "_tpkit_agent"
#: The agent's package (torch, numpy and the standard library only): copied into each kernel's exchange
#: folder, under :data:`AGENT_FOLDER`, and loaded there as the package :data:`AGENT_MODULE`.
AGENT_PACKAGE = Path(__file__).resolve().parents[1] / "witness" / "agent"
AGENT_FOLDER = "agent"

_IMPORT = re.compile(r"^\s*from\s+tpkit\.checks\s+import\s+verifier\s*(#.*)?$")
_VERIFIER = re.compile(r"""^\s*verifier\(\s*["']([A-Za-z0-9_-]+)["']\s*,\s*globals\(\)\s*\)\s*(#.*)?$""")


class HiddenTestError(Exception):
    """A hidden region the trusted executor cannot run on its side (an authoring error)."""


def plan(source: str) -> Optional[list]:
    """Segments of a test cell: [("kernel", code) | ("check", qid)], or None when the cell has no
    hidden region (it then runs in the kernel as it is)."""
    if BEGIN_HIDDEN not in source:
        return None
    segments, inside, kernel_lines = [], False, []

    def flush():
        code = "\n".join(kernel_lines)
        if code.strip():
            segments.append(("kernel", code))
        kernel_lines.clear()

    for line in source.split("\n"):
        marker = hidden_marker(line)
        if marker == "begin":
            flush()
            inside = True
        elif marker == "end":
            inside = False
        elif inside:
            if not line.strip() or line.strip().startswith("#") or _IMPORT.match(line):
                continue
            m = _VERIFIER.match(line)
            if not m:
                raise HiddenTestError(f"ligne de test caché non reconnue : {line.strip()!r} "
                                      "(seules les lignes verifier(\"<id>\", globals()) sont permises)")
            segments.append(("check", m.group(1)))
        else:
            kernel_lines.append(line)
    flush()
    return segments


def validate_hidden_tests(sources: list) -> None:
    """Raise HiddenTestError when a hidden region of these sources is not made of verifier lines."""
    for source in sources:
        plan(source)


# the course's secret: its own light module, which the coordinator reads without importing torch
from tpkit.grading.secret import MIN_SECRET_BITS, SECRET_BITS, SECRET_FILE, course_salt, pin_secret  # noqa: E402,F401


def agent_files() -> list:
    """The agent package's source files."""
    return sorted(AGENT_PACKAGE.glob("*.py"))


def agent_startup(exchange_path: str) -> str:
    """Kernel start-up code: load the agent's package from the exchange folder as `_tpkit_agent` (its
    modules import one another relatively) and start recording figures."""
    return (
        "import sys as _s, importlib.util as _u\n"
        f"_p = {os.path.join(exchange_path, AGENT_FOLDER)!r}\n"
        f"_spec = _u.spec_from_file_location({AGENT_MODULE!r}, _p + '/__init__.py', "
        "submodule_search_locations=[_p])\n"
        "_m = _u.module_from_spec(_spec)\n"
        f"_s.modules[{AGENT_MODULE!r}] = _m\n"
        "_w, _s.dont_write_bytecode = _s.dont_write_bytecode, True\n"  # as an exec of its source: no .pyc
        "try:\n    _spec.loader.exec_module(_m)\nfinally:\n    _s.dont_write_bytecode = _w\n"
        "_m.install_figure_hook()\n"
    )


def install_agent(exchange: Path) -> None:
    """The agent's package into ``exchange`` (readable by the sandbox's uid)."""
    folder = Path(exchange) / AGENT_FOLDER
    folder.mkdir(exist_ok=True)
    os.chmod(folder, 0o755)
    for source in agent_files():
        (folder / source.name).write_bytes(source.read_bytes())
        os.chmod(folder / source.name, 0o644)


def read_answer(path: Path, cap: int = MAX_ANSWER_BYTES) -> bytes:
    """The bytes of an answer file the kernel wrote: never through a link, never a FIFO or device,
    never more than `cap` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise WitnessError(f"pas de réponse du notebook ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise WitnessError("réponse du notebook invalide (pas un fichier)")
        if st.st_size > cap:
            raise WitnessError(f"réponse du notebook trop volumineuse ({st.st_size // 2**20} Mo)")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                raise WitnessError("réponse du notebook trop volumineuse")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class KernelLink(Protocol):
    """What the transport needs from the executor that runs the kernel."""

    timeout: Optional[float]  # seconds one request may take (None: no limit)

    def start(self, code: str) -> str:
        """Send `code` as a silent execute request; its msg_id."""

    def finish(self, msg_id: str) -> Optional[dict]:
        """Wait for that request's reply (None: timeout, the kernel interrupted)."""

    def check_alive(self) -> None:
        """Raise (nbclient's DeadKernelError) when the kernel died."""

    def interrupt(self) -> None:
        """Interrupt the kernel (a request took too long)."""


class KernelTransport:
    """The witness protocol over a running kernel, one execute request per check.

    The first request opens a session: two FIFOs in the exchange folder and one execute request in which
    the agent serves requests until :meth:`close`. Each request travels as a file (as the answer does);
    the FIFOs carry only its name, so a check's questions cost a pipe round trip each instead of an
    execute request (2.8 ms of kernel CPU and ~2.3 ms of the grader's). The kernel may scribble on the
    FIFOs: the grader reads lines of a few bytes under a cap, waits under the executor's timeout, and an
    answer is data whatever wrote it."""

    def __init__(self, exchange: Path, link: KernelLink, owner: Optional[int] = None):
        self.exchange = Path(exchange)
        self.link = link
        self.owner = owner  # the sandbox's uid, to which the FIFOs are given
        self.count = 0
        self._session: Optional[_Session] = None

    def request(self, req: dict):
        self.count += 1
        token = f"{self.count}-{secrets.token_hex(8)}"
        req_path, ans_path = self.exchange / f"req-{token}.pt", self.exchange / f"ans-{token}.pt"
        fd = os.open(req_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(dumps(req))
        try:
            if self._session is None:
                self._session = _Session(self.exchange, self.link, self.owner)
            try:
                self._session.ask(token)
            except BaseException:
                self.close()  # a session that failed once is not trusted to answer in order again
                raise
            answer = loads(read_answer(ans_path))
        finally:
            for p in (req_path, ans_path):
                try:
                    os.unlink(p)
                except OSError:
                    pass
        if not isinstance(answer, dict) or answer.get("status") != "ok":
            detail = answer.get("etype") if isinstance(answer, dict) else None
            raise WitnessError(f"le notebook n'a pas pu répondre ({detail or 'réponse malformée'})")
        return answer.get("answer")

    def close(self) -> None:
        """End the session (if one is open) and wait for its execute request to finish."""
        session, self._session = self._session, None
        if session is not None:
            session.close()


class _Session:
    LINE_CAP = 256
    POLL_S = 1.0  # how often a silent kernel is checked for being alive

    def __init__(self, exchange: Path, link: KernelLink, owner: Optional[int]):
        self.link, self.timed_out, self.buffer, self.msg_id = link, False, b"", None
        tag = secrets.token_hex(8)
        self.paths = [exchange / f"bell-{tag}", exchange / f"done-{tag}"]
        self.fds = []
        try:
            for path in self.paths:
                os.mkfifo(path, 0o600)
                if owner is not None:
                    os.chown(path, owner, owner, follow_symlinks=False)
            # the bell: both ends here (the kernel's open never waits, a write never fails for lack of a
            # reader); done: the read end only, so that the kernel's end closing shows as end of file
            self.bell = self._open(self.paths[0], os.O_RDWR)
            self.done = self._open(self.paths[1], os.O_RDONLY)
            self.msg_id = link.start(f"__import__({AGENT_MODULE!r}).session({str(self.paths[0])!r}, "
                                     f"{str(self.paths[1])!r})")
        except BaseException:
            self.close()
            raise

    def _open(self, path: Path, mode: int) -> int:
        fd = os.open(path, mode | os.O_NONBLOCK | os.O_NOFOLLOW)
        self.fds.append(fd)
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            raise WitnessError("canal du correcteur invalide")
        return fd

    def ask(self, token: str) -> None:
        try:
            os.write(self.bell, token.encode("ascii") + b"\n")
        except BlockingIOError:
            raise WitnessError("le notebook ne lit plus les requêtes du correcteur") from None
        timeout = self.link.timeout
        deadline = None if not timeout else time.monotonic() + timeout
        poller = select.poll()
        poller.register(self.done, select.POLLIN)
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                if line == token.encode("ascii"):
                    return
            if len(self.buffer) > self.LINE_CAP:
                raise WitnessError("réponse du notebook invalide")
            wait = self.POLL_S if deadline is None else min(self.POLL_S, deadline - time.monotonic())
            if wait <= 0:
                self.timed_out = True
                raise WitnessError("le notebook ne répond plus (délai dépassé)")
            if not poller.poll(wait * 1000):
                self.link.check_alive()
                continue
            try:
                data = os.read(self.done, 4096)
            except BlockingIOError:
                continue
            if not data:  # the kernel's end closed: the session stopped (or the kernel died)
                self.link.check_alive()
                raise WitnessError("le notebook a interrompu la vérification")
            self.buffer += data

    def close(self) -> None:
        if self.fds and self.msg_id is not None:
            try:
                os.write(self.bell, b"end\n")
            except OSError:
                pass
        try:
            if self.msg_id is not None:
                if self.timed_out:
                    self.link.interrupt()
                self.link.finish(self.msg_id)
        finally:
            for fd in self.fds:
                os.close(fd)
            self.fds = []
            for path in self.paths:
                try:
                    os.unlink(path)
                except OSError:
                    pass
