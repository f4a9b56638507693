"""Kernel forks asked by a worker and relayed by the coordinator (tpkit.grading.forkrelay): only into a
sandbox holder the asking worker started; anything else is answered with an error the worker raises."""
import json
import multiprocessing
import os
import threading

import pytest

from tpkit.grading import forkrelay, kernels


def test_a_worker_cannot_ask_for_a_fork_into_a_process_it_did_not_start():
    """The coordinator forwards a fork only into a sandbox holder that the asking worker started."""
    with pytest.raises(ValueError):
        forkrelay.check_holder(os.getpid(), os.getppid(), None)  # not a holder
    with pytest.raises(ValueError):
        forkrelay.check_holder(1, os.getpid(), None)  # not a descendant of the asker



@pytest.mark.parametrize("request_", [
    {"holder": 1, "uid": None, "args": ["ipykernel"]},  # not a sandbox of the asking worker
    {"holder": 1, "uid": None, "args": "ipykernel"},  # arguments not a list of strings
    {"holder": 1, "uid": None, "args": ["x"] * 65},  # too many
    {"holder": 1, "uid": None, "args": [], "cgroup": ["a"] * 17},
])
def test_a_refused_fork_request_is_answered_with_an_error_the_worker_raises(request_):
    """Both ends over a real pipe: the coordinator's relay answers every refused request with an error
    (never a pid), the worker's forker raises it, and the relay ends when the worker's end closes."""
    mine, theirs = multiprocessing.Pipe()
    relay = threading.Thread(target=forkrelay.serve_forks,
                             args=(mine, os.getpid(), kernels.default_settings(sandbox=True)), daemon=True)
    relay.start()
    fork = forkrelay.relay_forker(theirs)
    with pytest.raises(RuntimeError, match="ValueError"):
        fork(request_)
    theirs.close()
    relay.join(5)
    assert not relay.is_alive()


def test_a_malformed_message_is_answered_too():
    mine, theirs = multiprocessing.Pipe()
    relay = threading.Thread(target=forkrelay.serve_forks, args=(mine, os.getpid(), kernels.default_settings()),
                             daemon=True)
    relay.start()
    theirs.send_bytes(b"{pas du json")
    answer = json.loads(theirs.recv_bytes(forkrelay.MAX_MESSAGE_BYTES))
    assert set(answer) == {"error"} and answer["error"].startswith("JSONDecodeError")
    theirs.close()
    relay.join(5)
    assert not relay.is_alive()
