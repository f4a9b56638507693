"""The grading of one submission on a machine of a Dask cluster (:mod:`tpkit.grading.cluster`).

A Dask task (:func:`grade`) does on its machine what the coordinator of a local run does for one job:
it starts the submission's worker process (:func:`tpkit.grading.worker.main`, from a fork server of
that machine, with its limits and its wall clock), relays its kernel fork requests to that machine's
zygote (checked by :func:`tpkit.grading.forkrelay.serve_forks`) and returns, as plain data (bytes, numbers
and strings), the worker's JSON result, its ``autograded/`` and ``feedback/`` files and its log. The
coordinator validates the result exactly as a local one (:func:`tpkit.grading.worker_result.read_result`) and
writes the gradebook and the course's folders itself.

What a machine of the cluster needs, and what it never gets:

* the course folder (``nbgrader_config.py``, ``source/`` for the data files, ``release/`` and
  ``.grading_secret``, at the coordinator's path or at ``c.TpkitDask.course_root``) and the kit at the
  same version. Each task
  carries the coordinator's fingerprint of them (:func:`fingerprint`: hashes, never the secret itself);
  a machine whose copy differs refuses to grade (a missing secret would otherwise be created afresh,
  and the same notebook would get other check inputs, so another grade);
* the submission, sent as data (:func:`pack`/:func:`unpack`: files, folders and links as they are, no
  link followed) and a private gradebook holding the course and that student only
  (:func:`tpkit.grading.bookcopy.student_copy`). Never the course's gradebook, never another student's
  submission; it writes nothing into the course folder (the worker's folders, its gradebook and its log
  are in a private temporary folder, removed at the end).

A Dask worker's processes must be allowed children (``distributed.worker.daemon: False``): each task
starts a worker process, as the local run does.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import itertools
import multiprocessing
import os
import pickle
import queue
import shutil
import signal
import socket
import stat
import tempfile
import threading
import time
from pathlib import Path, PurePosixPath

from tpkit.grading import staging, submission_files

#: What goes back to the coordinator: the autograded notebook and the feedback page of one submission
#: (outputs are capped by LimitOutputBytes), and the tail of its log.
MAX_OUTPUT_BYTES = 256 * 1024 * 1024
MAX_LOG_BYTES = 4 * 1024 * 1024
#: Content of a submission sent to a machine at most (the notebooks it holds, each at most
#: submission_files.MAX_NOTEBOOK_BYTES, which is all that the pre-check reads of a file that large).
MAX_SUBMISSION_BYTES = 256 * 1024 * 1024
#: What a machine needs of the course (hashed by :func:`fingerprint`).
COURSE_PARTS = ("release", "data", "secret", "kit")
#: Test-only fault (TPKIT_TEST_WORKER_FAULTS ``student:daskkill=<marker>``): the first attempt of that
#: submission kills its own Dask worker process while the submission's worker runs (tests/grading/test_cluster.py).
KILL_FAULT = "daskkill="
NOT_DAEMON = ("les workers Dask doivent pouvoir lancer des processus : démarrez-les avec "
              "DASK_DISTRIBUTED__WORKER__DAEMON=False (configuration distributed.worker.daemon: False)")


class CourseMismatch(RuntimeError):
    """This machine's course or kit is not the coordinator's (French message): nothing graded here."""


# ---------------------------------------------------------------- the course, on both sides

def _hash_tree(h, folder: Path, suffixes=None, exclude: str = "") -> None:
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        if (suffixes is None or path.suffix in suffixes) and not (exclude and path.suffix == exclude):
            h.update(path.relative_to(folder).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())


_fingerprints: dict = {}


def _kit_hash() -> str:
    """The kit's code, templates and data (once per process)."""
    if "kit" not in _fingerprints:
        import tpkit
        from tpkit import paths
        h = hashlib.sha256()
        _hash_tree(h, Path(tpkit.__file__).parent, {".py", ".tpl", ".j2", ".css", ".html", ".json", ".txt"})
        _hash_tree(h, paths.DATA)
        _fingerprints["kit"] = h.hexdigest()
    return _fingerprints["kit"]


def fingerprint(root: Path, assignment: str) -> dict:
    """{part: sha256} of what grading on a machine depends on (:data:`COURSE_PARTS`): the assignment's
    release, its data files (``source/<assignment>/`` but the notebook), the course's secret (a hash of it: the secret never leaves the machine), the kit's code,
    templates and data."""
    from tpkit.grading import trusted
    root = Path(root)
    h = hashlib.sha256()
    _hash_tree(h, root / "release" / assignment)
    data = hashlib.sha256()  # the assignment's data files, which nbgrader restores from source/
    _hash_tree(data, root / "source" / assignment, exclude=".ipynb")
    secret = root / trusted.SECRET_FILE
    return {"release": h.hexdigest(), "data": data.hexdigest(), "kit": _kit_hash(),
            "secret": hashlib.sha256(b"tpkit-secret\0" + secret.read_bytes()).hexdigest()
            if secret.is_file() else "absent"}


def check_course(root: Path, assignment: str, expected: dict) -> None:
    """:class:`CourseMismatch` unless this machine's course and kit are the coordinator's."""
    names = {"release": f"release/{assignment}", "data": f"données de source/{assignment}",
             "secret": "secret du cours (.grading_secret)",
             "kit": "version du kit (tpkit, data/)"}
    if not (Path(root) / "nbgrader_config.py").is_file():
        raise CourseMismatch(f"{socket.gethostname()} : pas de cours dans {root} (nbgrader_config.py absent)")
    mine = fingerprint(root, assignment)
    if mine["secret"] == "absent":
        raise CourseMismatch(f"{socket.gethostname()} : pas de secret du cours dans {root} : copiez-y "
                             ".grading_secret depuis la machine qui corrige")
    wrong = [names[p] for p in COURSE_PARTS if mine.get(p) != expected.get(p)]
    if wrong:
        raise CourseMismatch(f"{socket.gethostname()} : le cours de {root} diffère de celui qui corrige "
                             f"({', '.join(wrong)}) : recopiez-le")


def check_worker(root: str, assignment: str, expected: dict, sandbox: bool = True) -> str:
    """(Run on every worker before a run: ``client.run``.) '' when this machine can grade, else why not."""
    try:
        if multiprocessing.current_process().daemon:
            return NOT_DAEMON
        check_course(Path(root), assignment, expected)
        if sandbox:
            from tpkit.grading import sandbox_oneoff
            sandbox_oneoff.check_available()
    except CourseMismatch as exc:
        return str(exc)
    except Exception as exc:
        return f"{socket.gethostname()} : {type(exc).__name__} : {exc}"
    return ""


# ---------------------------------------------------------------- a submission as data

def pack(folder: Path) -> dict:
    """``submitted/<student>/<assignment>`` as data, seen as the pre-check sees it: no link followed
    (a link is sent as its target's text), special files by kind, a file's content only where the
    pre-check reads it (notebooks up to its limit, small files), otherwise its size."""
    folder = Path(folder)
    if submission_files.is_link(folder) or submission_files.is_link(folder.parent):
        return {"state": "linked", "entries": []}
    if not folder.is_dir():
        return {"state": "absent", "entries": []}
    entries, budget = [], MAX_SUBMISSION_BYTES
    # one entry more than the pre-check looks at: enough for it to say "more than"
    for rel, path, st in itertools.islice(submission_files.walk(folder), submission_files.MAX_SCANNED + 1):
        what = submission_files.entry_kind(st)
        if what == "link":
            entries.append((rel, "link", submission_files.link_target(path)))
        elif what == "file":
            wanted = st.st_size <= staging.MAX_KEPT_FILE_BYTES or (
                rel.endswith(".ipynb") and st.st_size <= min(submission_files.MAX_NOTEBOOK_BYTES, budget))
            data = None
            if wanted:
                try:
                    data = submission_files.read_bytes_nofollow(Path(path), submission_files.MAX_NOTEBOOK_BYTES)
                    budget -= len(data)
                except OSError:
                    data = None
            entries.append((rel, "file", data if data is not None else st.st_size, st.st_mtime_ns))
        else:
            entries.append((rel, what, None))
    return {"state": "dir", "entries": entries}


def _safe_rel(rel: str) -> PurePosixPath:
    path = PurePosixPath(rel)
    if not rel or path.is_absolute() or any(p in ("", ".", "..") for p in rel.split("/")):
        raise ValueError(f"bad path in a packed submission: {rel!r}")
    return path


def unpack(packed: dict, folder: Path) -> None:
    """Rebuild a :func:`pack`\\ ed submission at ``folder`` (which must not exist)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    if packed["state"] == "linked":
        os.symlink("/lien-non-suivi", folder)
        return
    if packed["state"] == "absent":
        return
    folder.mkdir()
    for entry in packed["entries"]:
        rel, kind, payload = entry[:3]
        path = folder / _safe_rel(rel)
        if kind == "dir":
            path.mkdir(exist_ok=True)
        elif kind == "link":
            os.symlink(payload, path)
        elif kind == "other":
            os.mkfifo(path)
        else:
            with open(path, "wb") as f:
                if isinstance(payload, bytes):
                    f.write(payload)
                else:  # a file the pre-check does not read: its size only (a sparse file)
                    f.truncate(int(payload))
            os.utime(path, ns=(entry[3], entry[3]))


def collect(folder: Path, budget: int) -> dict:
    """{relative path: bytes} of the regular files under ``folder`` (links and special files left out),
    at most ``budget`` bytes in all (ValueError past it)."""
    out = {}
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return out
    for directory, dirs, files in os.walk(folder):  # os.walk does not enter linked folders
        for name in files:
            path = Path(directory) / name
            if not stat.S_ISREG(path.lstat().st_mode):
                continue
            data = submission_files.read_bytes_nofollow(path, budget)
            budget -= len(data)
            if budget < 0:
                raise ValueError("sorties trop volumineuses")
            out[path.relative_to(folder).as_posix()] = data
    return out


# ---------------------------------------------------------------- this machine's fork server and zygote

_keeper: "queue.Queue | None" = None
_keeper_lock = threading.Lock()


def _keep(requests: "queue.Queue") -> None:
    """A thread that lives as long as the Dask worker: the zygote dies with the thread that started it
    (PR_SET_PDEATHSIG), and Dask's task threads come and go."""
    from tpkit.grading import kernels
    while True:
        settings, done = requests.get()
        try:
            kernels.prestart(settings)  # (re)starts this settings' zygote when it is not running
        finally:
            done.set()


def ensure_zygote(settings) -> None:
    global _keeper
    if not (settings.sandbox and settings.warm):
        return
    with _keeper_lock:
        if _keeper is None:
            _keeper = queue.Queue()
            threading.Thread(target=_keep, args=(_keeper,), name="tpkit-zygote-keeper", daemon=True).start()
    done = threading.Event()
    _keeper.put((settings, done))
    done.wait()


# ---------------------------------------------------------------- the task

def _course_view(root: Path, view: Path) -> Path:
    """A course folder of the task's own: links to the course's configuration, sources, release and
    secret; its ``exports/`` (the student's log) is the task's."""
    from tpkit.grading import trusted
    view.mkdir()
    for name in ("nbgrader_config.py", "source", "release", trusted.SECRET_FILE):
        os.symlink(Path(root) / name, view / name)
    (view / "exports").mkdir()
    return view


def _fault(task: dict) -> tuple:
    """(the worker's fault, the marker of the test-only kill of this Dask worker or None)."""
    fault = task.get("fault") or ""
    if fault.startswith(KILL_FAULT):
        return "", Path(fault[len(KILL_FAULT):])
    return fault, None


def _kill_self_once(marker: Path) -> None:
    """(Test only.) The first attempt records itself and kills this Dask worker process; the next
    attempts only record themselves."""
    first = not marker.exists()
    with open(marker, "a") as f:
        f.write(f"{os.getpid()}\n")
    if first:
        time.sleep(2)  # the submission's worker and its kernel are at work
        os.kill(os.getpid(), signal.SIGKILL)


def _run_worker(job, settings, kill_marker) -> tuple:
    """Start the job's worker process, relay its fork requests, enforce its wall clock:
    (exit code, why it was killed or None), as the local coordinator does (pipeline.Grader._schedule)."""
    from tpkit.grading import cgroups, forkrelay, forkserver, proctools, worker, worker_result
    ctx = forkserver.context()
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(target=worker.main, args=(job, theirs), name=f"tpkit-worker-{job.student}", daemon=True)
    proc.start()
    theirs.close()
    relay = threading.Thread(target=forkrelay.serve_forks, args=(mine, proc.pid, settings),
                             name="tpkit-fork-relay", daemon=True)
    relay.start()
    if kill_marker is not None:
        _kill_self_once(kill_marker)
    proc.join(job.options.settings.worker_wall())
    killed = None
    if proc.is_alive():
        killed = worker_result.wall_reason(job.options)
        proctools.kill_tree(proc.pid)
    proc.join()
    mine.close()
    relay.join(5)
    if killed is not None:
        groups = cgroups.backend()
        if groups is not None:
            groups.sweep()
    return proc.exitcode, killed


def _slots(host_threads: dict) -> int:
    """Submissions this machine grades at once: the threads of its Dask workers (the scheduler's count
    at the start of the run, by host; this worker's own threads for a machine that joined later)."""
    from distributed import get_worker
    from distributed.comm import get_address_host
    me = get_worker()
    return max(1, int(host_threads.get(get_address_host(me.address)) or me.state.nthreads or 1))


def grade(base: bytes, task: dict) -> dict:
    """(A Dask task.) Grade one submission on this machine: ``base`` is the run's, pickled by the
    coordinator (options, expected cells, data files, kernel settings, course fingerprint, course path
    here, threads per machine), ``task`` the
    submission's (student, packed submission, private gradebook, remarks, test fault). Returns data only:
    {"result": the worker's JSON bytes or None, "exitcode", "failure" (French, or None: why the worker was
    stopped or its outputs refused), "seconds", "host", "files": {"autograded/…" or "feedback/…": bytes},
    "log": bytes}."""
    from tpkit.grading import worker, worker_result
    if multiprocessing.current_process().daemon:
        raise CourseMismatch(NOT_DAEMON)
    t0 = time.monotonic()
    base = pickle.loads(base)  # from the coordinator (the other way, only data travels)
    root, options = Path(base["root"]), base["options"]
    assignment, student = options.assignment, task["student"]
    check_course(root, assignment, base["fingerprint"])
    private = Path(tempfile.mkdtemp(prefix="tpkit-dask-"))  # 0700
    try:
        view = _course_view(root, private / "cours")
        # the cores of this machine shared by the submissions it grades at once, as on one machine
        # (TpkitGrading.kernel_threads): its Dask workers' threads
        options = dataclasses.replace(options, root=view, workers=_slots(base.get("host_threads") or {}))
        (private / "noyaux").mkdir()
        settings = dataclasses.replace(base["settings"], threads=options.settings.kernel_threads(),
                                       tmp_root=str(private / "noyaux"))
        submitted = private / "rendus" / student / assignment
        unpack(task["submission"], submitted)
        gradebook = private / "gradebook-copie.db"
        gradebook.write_bytes(task["gradebook"])
        work = private / "w"
        work.mkdir(mode=0o700)
        fault, kill_marker = _fault(task)
        job = worker.Job(student, options, work, submitted, gradebook, base["expected"], base["data_files"],
                         settings, remarks=list(task.get("remarks") or []), fault=fault)
        ensure_zygote(settings)
        exitcode, killed = _run_worker(job, settings, kill_marker)
        out = {"result": None, "exitcode": exitcode, "failure": killed, "files": {}, "log": b"",
               "host": socket.gethostname()}
        try:
            out["result"] = submission_files.read_bytes_nofollow(work / worker_result.RESULT_NAME, worker_result.MAX_RESULT_BYTES)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        budget = MAX_OUTPUT_BYTES
        try:
            for step in ("autograded", "feedback"):
                for rel, data in collect(work / step / student / assignment, budget).items():
                    out["files"][f"{step}/{rel}"] = data
                    budget -= len(data)
        except ValueError:
            out["files"], out["failure"] = {}, (f"sorties de la correction trop volumineuses (plus de "
                                                f"{MAX_OUTPUT_BYTES // (1024 * 1024)} Mo)")
        log = options.exports / "logs" / f"{student}.log"
        if log.is_file():
            with open(log, "rb") as f:
                f.seek(max(0, log.stat().st_size - MAX_LOG_BYTES))
                out["log"] = f.read(MAX_LOG_BYTES)
        out["seconds"] = round(time.monotonic() - t0, 2)
        return out
    finally:
        shutil.rmtree(private, ignore_errors=True)
