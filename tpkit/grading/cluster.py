"""Grading on the machines of a Dask cluster (``distributed``), the coordinator staying on this one.

    python -m tpkit.grading --dask-scheduler tcp://ordonnanceur:8786   # workers already running
    python -m tpkit.grading --dask-scheduler local:4                   # a LocalCluster of 4 processes

or, in ``nbgrader_config.py`` (the command line wins)::

    c.TpkitGrading.dask_scheduler = "tcp://ordonnanceur:8786"
    def cluster():                       # called once per run, by the coordinator only
        from dask_jobqueue import SLURMCluster
        c = SLURMCluster(cores=16, processes=1, memory="64GB", walltime="01:00:00",
                         job_script_prologue=["export DASK_DISTRIBUTED__WORKER__DAEMON=False"])
        c.scale(jobs=4)
        return c
    c.TpkitGrading.dask_cluster = cluster
    c.TpkitGrading.dask_course_root = "/partage/cours/rn_pytorch"   # the course folder on the workers (default: this one)

The run is the local one (:class:`tpkit.grading.pipeline.Grader`: pre-check order, held results, the
stop on dead first kernels, the gradebook and the exports written here only) but for where each
submission's worker runs: instead of a process of this machine's fork server, a Dask task
(:func:`tpkit.grading.remote.grade`) on any machine of the cluster starts it there and returns its JSON
result and its output files as data. The coordinator validates them as it validates a local worker's
(:func:`tpkit.grading.worker_result.read_result`) and writes the gradebook, ``autograded/``, ``feedback/``, the
logs and the exports. Dask is the queue: a task whose Dask worker dies (machine lost, process killed) is
run again elsewhere by the scheduler; the coordinator writes a submission once, when its result
arrives, so a lost worker costs a retry of the submissions it held, never a lost or a double grade.
A submission whose task killed its worker ``distributed.scheduler.allowed-failures`` times (3) fails alone.

Each task carries the student's submission and a gradebook holding that student only
(:mod:`tpkit.grading.bookcopy`); the machines need the course folder and the kit (checked by
fingerprint before the run and by each task: :func:`tpkit.grading.remote.check_course`), never the
course's gradebook.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import uuid
from pathlib import Path, PurePosixPath
from typing import Optional

from tpkit.grading import bookcopy, pipeline, remote, worker, worker_result
from tpkit.grading.options import Options

#: Submissions handed to the scheduler ahead of the free worker threads (packed submissions wait in
#: this process's memory until then).
AHEAD = 2
LOCAL_PREFIX = "local"


class ClusterError(pipeline.GradingError):
    """The cluster cannot grade (French message): no grade written by this run from then on."""


@dataclasses.dataclass
class _Connection:
    client: object
    owned: list  # what this run started (closed at its end, newest first)

    def close(self) -> None:
        if self.owned:  # a LocalCluster's nanny warns as it kills worker processes slow to exit: noise here
            logging.getLogger("distributed").setLevel(logging.ERROR)
        for thing in reversed(self.owned):
            try:
                thing.close()
            except Exception:
                pass


def connect(target) -> _Connection:
    """A ``distributed.Client`` for ``target``: a Client (used as is), a scheduler address, ``local`` or
    ``local:N`` (a LocalCluster of N worker processes, one thread each; N: the cores), a cluster object
    (LocalCluster, SLURMCluster…) or a function returning one of those (called here, once)."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError("Dask n'est pas installé : pip install -e '.[cluster]' (ou distributed)") from None
    logging.getLogger("distributed").setLevel(logging.WARNING)  # its start-up and shutdown lines are noise here
    owned = []
    if callable(target) and not hasattr(target, "scheduler_address") and not isinstance(target, Client):
        target = target()
        if hasattr(target, "close"):
            owned.append(target)
    if isinstance(target, Client):
        return _Connection(target, owned)
    if isinstance(target, str) and (target == LOCAL_PREFIX or target.startswith(LOCAL_PREFIX + ":")):
        count = target.partition(":")[2]
        if count and not count.isdigit():
            raise ClusterError(f"--dask-scheduler {target} : « local:N », N un nombre de processus")
        # a worker process starts each submission's worker process: it may not be a daemon (kept for the
        # workers the nanny restarts after a crash)
        dask.config.set({"distributed.worker.daemon": False})
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # read by the worker processes at start
        cluster = LocalCluster(n_workers=int(count or os.cpu_count() or 1), threads_per_worker=1,
                               processes=True, dashboard_address=None)
        owned.append(cluster)
        target = cluster
    try:
        client = Client(target, timeout=30)
    except (OSError, TimeoutError, ValueError) as exc:
        _Connection(None, owned).close()
        raise ClusterError(f"ordonnanceur Dask injoignable ({target}) : {exc}") from None
    owned.append(client)
    return _Connection(client, owned)


def _host_threads(client) -> dict:
    """{host: threads of its Dask workers}: the submissions each machine grades at once."""
    from distributed.comm import get_address_host
    out: dict = {}
    for address, threads in client.nthreads().items():
        host = get_address_host(address)
        out[host] = out.get(host, 0) + int(threads or 0)
    return out


def _threads(client) -> int:
    try:
        return sum(client.nthreads().values())
    except Exception:
        return 0


class DaskGrader(pipeline.Grader):
    """A grading run whose submissions are graded by Dask tasks (see the module docstring)."""

    local_kernels = False

    def __init__(self, options: Options, target, course_root: Optional[str] = None, progress=None):
        super().__init__(options, progress)
        self.target = target
        self.course_root = str(course_root or options.root)

    def _schedule(self, jobs, settings) -> None:
        if not jobs:
            return
        from tpkit.grading import trusted
        options = self.options
        trusted.course_salt(options.root)  # created here on a first run: the machines need this one
        stamp = remote.fingerprint(options.root, options.assignment)
        conn = connect(self.target)
        try:
            client = conn.client
            problems = {addr: msg for addr, msg in client.run(remote.check_worker, self.course_root,
                                                               options.assignment, stamp, options.settings.sandbox).items()
                        if msg}
            if problems:
                raise ClusterError("correction non lancée, workers Dask inutilisables : "
                                   + " ; ".join(sorted(set(problems.values()))))
            self._grade_on(client, jobs, settings, stamp)
        finally:
            conn.close()

    def _grade_on(self, client, jobs, settings, stamp) -> None:
        from distributed import as_completed
        options = self.options
        run_copy = jobs[0].gradebook
        model = bookcopy.template(run_copy)
        # what every task shares, pickled once and sent with each task (not scattered: a task must survive
        # the loss of every worker that held a copy)
        base = pickle.dumps({"options": options, "expected": self._expected, "data_files": jobs[0].data_files,
                             "settings": dataclasses.replace(settings, tmp_root=None), "fingerprint": stamp,
                             "root": self.course_root, "host_threads": _host_threads(client)})
        run_id = uuid.uuid4().hex[:8]
        pending, waiting = {}, as_completed()

        def submit():
            limit = max(AHEAD * max(_threads(client), 1), options.settings.workers)
            while jobs and len(pending) < limit:
                job = jobs.popleft()
                task = {"student": job.student, "submission": remote.pack(job.submitted),
                        "gradebook": bookcopy.student_copy(run_copy, model, job.student, job.private),
                        "remarks": list(job.remarks), "fault": job.fault}
                future = client.submit(remote.grade, base, task, key=f"tpkit-{run_id}-{job.student}", pure=False)
                pending[future.key] = (job, future)
                waiting.add(future)

        try:
            submit()
            for future in waiting:
                job, _ = pending.pop(future.key)
                self._collect(job, future)
                submit()
                self._decide(final=not jobs and not pending)
        finally:  # stopped: nothing of this run goes on on the cluster
            for _, future in pending.values():
                future.cancel()

    def _collect(self, job: worker.Job, future) -> None:
        """A task's outcome into the job's private folder, then the local path (:meth:`_accept`)."""
        from distributed.scheduler import KilledWorker
        try:
            data = future.result()
        except KilledWorker:
            self._accept(job, 0.0, None, "correction abandonnée : elle a arrêté plusieurs workers Dask de suite")
            return
        except remote.CourseMismatch as exc:
            raise ClusterError(f"correction arrêtée : {exc}") from None
        except Exception as exc:  # the machine, not the student: stop rather than fail a class
            raise ClusterError(f"correction arrêtée : la tâche de {job.student} a échoué sur le cluster "
                               f"({type(exc).__name__} : {str(exc)[:300]})") from None
        result = data.get("result")
        if isinstance(result, bytes):
            (job.private / worker_result.RESULT_NAME).write_bytes(result[:worker_result.MAX_RESULT_BYTES + 1])
        failure = data.get("failure")
        if failure is None:
            _write_outputs(job.private, job.student, self.options.assignment, data.get("files") or {})
        log = data.get("log")
        if isinstance(log, bytes) and log:
            logdir = self.options.exports / "logs"
            logdir.mkdir(parents=True, exist_ok=True)
            (logdir / f"{job.student}.log").write_bytes(log[-remote.MAX_LOG_BYTES:])
        exitcode = data.get("exitcode")
        self._accept(job, float(data.get("seconds") or 0.0), exitcode if isinstance(exitcode, int) else None,
                     failure if isinstance(failure, str) else None)


def _write_outputs(private: Path, student: str, assignment: str, files: dict) -> None:
    """``{"autograded/<rel>" or "feedback/<rel>": bytes}`` into ``private/<step>/<student>/<assignment>/``,
    where :meth:`pipeline.Grader._apply` copies a local worker's from."""
    for name, data in files.items():
        path = PurePosixPath(name)
        parts = path.parts
        if not isinstance(data, bytes) or len(parts) < 2 or parts[0] not in ("autograded", "feedback") \
                or path.is_absolute() or any(p in ("", ".", "..") for p in parts):
            continue
        dest = Path(private, parts[0], student, assignment, *parts[1:])
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)


def grade(students: list, options: Options, target=None, course_root: Optional[str] = None,
          progress=None, preset_failures: Optional[dict] = None, preset_remarks: Optional[dict] = None):
    """:func:`tpkit.grading.pipeline.grade` with the submissions graded on the Dask cluster ``target``
    (see :func:`connect`)."""
    return DaskGrader(options, target, course_root, progress).run(students, preset_failures, preset_remarks)

