"""Kernel forks asked by a worker, relayed by the coordinator to the run's zygote.

Warm kernels are forked by the coordinator's zygote (:mod:`tpkit.grading.zygote`, about 3 s of CPU to
start, so never one per worker). A worker asks for a fork through its pipe to the coordinator
(:func:`relay_forker`); the coordinator forwards it only for a sandbox holder that descends from that
worker and runs as the uid the worker names, with the limits, environment and paths of the run's own
settings (:func:`serve_forks`): a worker cannot put a process into another submission's sandbox.

Apart from the worker's grading (:mod:`tpkit.grading.worker`) because both ends of this small protocol
live here, and its checks are the coordinator's.
"""
from __future__ import annotations

import json
import os

from tpkit.grading import kernels

#: Largest message of a worker to the coordinator (a fork request).
MAX_MESSAGE_BYTES = 256 * 1024


def relay_forker(conn):
    """A ``forker`` for :func:`kernels.start_kernel`: the fork request goes to the coordinator."""
    def fork(request: dict) -> int:
        conn.send_bytes(json.dumps({"fork": request}).encode())
        answer = json.loads(conn.recv_bytes(MAX_MESSAGE_BYTES))
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return int(answer["pid"])
    return fork


def serve_forks(conn, worker_pid: int, settings: kernels.KernelSettings) -> None:
    """(A coordinator thread per worker.) Forward the worker's fork requests to the run's zygote, for
    sandboxes of that worker only, until the worker's end of the pipe closes."""
    while True:
        try:
            data = conn.recv_bytes(MAX_MESSAGE_BYTES)
        except (EOFError, OSError):
            return
        try:
            request = json.loads(data)["fork"]
            holder, uid, args = int(request["holder"]), request["uid"], request["args"]
            if not isinstance(args, list) or len(args) > 64 or not all(isinstance(a, str) for a in args):
                raise ValueError("bad arguments")
            groups = request.get("cgroup") or []
            if not isinstance(groups, list) or len(groups) > 16 or not all(isinstance(g, str) for g in groups):
                raise ValueError("bad cgroup")
            check_holder(holder, worker_pid, uid)
            answer = {"pid": kernels.zygote_fork(settings, {"holder": holder, "uid": uid, "args": args,
                                                            "cgroup": groups})}
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        try:
            conn.send_bytes(json.dumps(answer).encode())
        except OSError:
            return


def check_holder(holder: int, worker_pid: int, uid) -> None:
    """ValueError unless ``holder`` is a sandbox holder started by the worker ``worker_pid`` and runs
    as ``uid`` (root: a uid of the pool; otherwise no uid)."""
    import psutil
    from tpkit.grading import zygote
    try:
        proc = psutil.Process(holder)
        ancestors = {p.pid for p in proc.parents()}
        marked = zygote.HOLDER_MARK in " ".join(proc.cmdline())
        real_uid = proc.uids().real
    except psutil.Error:
        raise ValueError("no such sandbox") from None
    if worker_pid not in ancestors or not marked:
        raise ValueError("not a sandbox of this worker")
    if os.geteuid() == 0:
        if not isinstance(uid, int) or isinstance(uid, bool) or uid != real_uid:
            raise ValueError("uid does not match the sandbox's")
    elif uid is not None:
        raise ValueError("uid given without root")
