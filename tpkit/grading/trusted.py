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
folder (shared with the sandbox and nothing else) and a one-line request on the kernel's shell channel.
Answers are read without following links, from regular files only, under a size cap, and decoded with
``torch.load(weights_only=True)``: data, never code.
"""
from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path
from typing import Callable, Optional

from tpkit.witness import MAX_ANSWER_BYTES, WitnessError, dumps, loads

AGENT_MODULE = "_tpkit_agent"
AGENT_SOURCE = Path(__file__).resolve().parents[1] / "witness" / "agent.py"

_IMPORT = re.compile(r"^\s*from\s+tpkit\.checks\s+import\s+verifier\s*(#.*)?$")
_VERIFIER = re.compile(r"""^\s*verifier\(\s*["']([A-Za-z0-9_-]+)["']\s*,\s*globals\(\)\s*\)\s*(#.*)?$""")


class HiddenTestError(Exception):
    """A hidden region the trusted executor cannot run on its side (an authoring error)."""


def plan(source: str) -> Optional[list]:
    """Segments of a test cell: [("kernel", code) | ("check", qid)], or None when the cell has no
    hidden region (it then runs in the kernel as it is)."""
    if "BEGIN HIDDEN TESTS" not in source:
        return None
    segments, inside, kernel_lines = [], False, []

    def flush():
        code = "\n".join(kernel_lines)
        if code.strip():
            segments.append(("kernel", code))
        kernel_lines.clear()

    for line in source.split("\n"):
        if "BEGIN HIDDEN TESTS" in line:
            flush()
            inside = True
        elif "END HIDDEN TESTS" in line:
            inside = False
        elif inside:
            if not line.strip() or line.strip().startswith("#") or _IMPORT.match(line):
                continue
            m = _VERIFIER.match(line)
            if not m:
                raise HiddenTestError(f"ligne de test caché non reconnue : {line.strip()!r} "
                                      "(seuls `verifier(\"<id>\", globals())` sont permis)")
            segments.append(("check", m.group(1)))
        else:
            kernel_lines.append(line)
    flush()
    return segments


def validate_hidden_tests(sources: list) -> None:
    """Raise HiddenTestError when a hidden region of these sources is not made of verifier lines."""
    for source in sources:
        plan(source)


def course_salt(root: Path) -> int:
    """The course's secret (created on first use, kept out of git and out of the sandbox): it seeds the
    inputs the checks draw, so a submission cannot recognise them, and the same submission always gets
    the same inputs."""
    path = Path(root) / ".grading_secret"
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(str(secrets.randbits(62) | 1))
    return int(path.read_text().strip())


def agent_startup(exchange_path: str) -> str:
    """Kernel start-up code: load the agent from the exchange folder as module `_tpkit_agent` and
    start recording figures."""
    return (
        "import sys as _s, types as _t\n"
        f"_m = _t.ModuleType({AGENT_MODULE!r})\n"
        f"_p = {os.path.join(exchange_path, 'agent.py')!r}\n"
        "exec(compile(open(_p).read(), _p, 'exec'), _m.__dict__)\n"
        f"_s.modules[{AGENT_MODULE!r}] = _m\n"
        "_m.install_figure_hook()\n"
    )


def install_agent(exchange: Path) -> None:
    (Path(exchange) / "agent.py").write_bytes(AGENT_SOURCE.read_bytes())
    os.chmod(Path(exchange) / "agent.py", 0o644)


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


class KernelTransport:
    """The witness protocol over a running kernel: `execute(code) -> reply or None` sends one line on
    the shell channel and waits for its reply (the executor's own machinery, with its timeout)."""

    def __init__(self, exchange: Path, execute: Callable[[str], Optional[dict]]):
        self.exchange = Path(exchange)
        self.execute = execute
        self.count = 0

    def request(self, req: dict):
        self.count += 1
        token = f"{self.count}-{secrets.token_hex(8)}"
        req_path, ans_path = self.exchange / f"req-{token}.pt", self.exchange / f"ans-{token}.pt"
        fd = os.open(req_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(dumps(req))
        try:
            reply = self.execute(f"__import__({AGENT_MODULE!r}).serve({str(req_path)!r}, {str(ans_path)!r})")
            if reply is None:
                raise WitnessError("le notebook ne répond plus (délai dépassé)")
            if reply.get("content", {}).get("status") != "ok":
                raise WitnessError("le notebook a refusé la requête du correcteur "
                                   f"({reply.get('content', {}).get('ename', 'erreur')})")
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
