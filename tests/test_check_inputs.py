"""Inputs nobody can anticipate (issue 23, item 4): the checks draw their inputs from every bit of the
course secret (at least 128), the same inputs for the same secret, two independent draws per call of a
student function; what a student function writes while a check calls it is discarded. Fast: no notebook
is executed, the witness runs in this process (the fd-level part is what `capfd` sees)."""
import inspect
import os
import stat
import sys

import pytest
import torch

from tpkit.checks import SECRET_VARIABLE, reference as ref, run_check, untrusted_secret
from tpkit.checks.common import Draw, draws, gen
from tpkit.grading import trusted
from tpkit.witness import LocalTransport, Witness

SECRET = (0xC0FFEE << 200) | (0x5EED << 64) | 12345


def ns_with(salt):
    return Witness(LocalTransport({}), salt=salt)


def inputs(salt, key=1, index=0):
    g = gen(ns_with(salt), key, index)
    return torch.cat([g.rand(3, 2).reshape(-1), g.randn(4), g.randint(0, 1000, (3,)).to(torch.float64)])


def test_same_secret_same_inputs():
    assert torch.equal(inputs(SECRET), inputs(SECRET))
    assert torch.equal(inputs(0), inputs(0))  # untrusted mode: fixed inputs


@pytest.mark.parametrize("bit", [0, 63, 64, 100, 127, 128, 200, 255])
def test_every_bit_of_the_secret_changes_the_inputs(bit):
    """A secret differing in one bit (bit 100 among them: beyond torch's 64-bit seeds) draws other inputs."""
    assert not torch.equal(inputs(SECRET), inputs(SECRET ^ (1 << bit)))


def test_draws_are_independent_and_seeded_with_256_bits():
    a, b = draws(ns_with(SECRET), 1)
    assert not torch.equal(a.randn(5), b.randn(5))
    assert not torch.equal(inputs(SECRET, key=1), inputs(SECRET, key=2))
    assert not torch.equal(inputs(SECRET, index=0), inputs(SECRET, index=1))
    g = gen(ns_with(SECRET), 1)
    assert isinstance(g, Draw) and 200 < g.entropy.bit_length() <= 256
    assert g.rng.bit_generator.seed_seq.entropy == g.entropy  # the whole digest seeds the generator
    assert g.rand(2, 3).dtype == torch.float64 and g.randint(0, 3, (4,)).dtype == torch.int64
    assert sorted(g.randperm(6).tolist()) == list(range(6)) and 3 <= g.integer(3, 4) <= 4


class Recorder:
    """A correct `pred` that remembers the inputs a check gave it."""

    def __init__(self):
        self.calls = []

    def __call__(self, X, W, B):
        self.calls.append(X.detach().clone())
        return torch.softmax(X @ W + B, dim=1)


def section_2(pred):
    R = ref.tensors()
    W, B = ref.statement_init(0, ref.data()["d"])
    return {"pred": pred, "W": W, "B": B, "Yhat": ref.pred(R["X"], W, B), "X": R["X"]}


def test_a_check_calls_the_student_function_on_two_draws_fixed_by_the_secret():
    recorded = {}
    for salt in (SECRET, SECRET, SECRET ^ (1 << 100)):
        pred = Recorder()
        assert run_check("q2_pred", Witness(LocalTransport(section_2(pred)), salt=salt)) is None
        drawn = []  # each draw is given to pred twice: its value, then its gradient (vjp)
        for x in pred.calls:
            if x.shape == (7, 5) and not any(torch.equal(x, y) for y in drawn):
                drawn.append(x)
        assert len(drawn) == 2
        recorded.setdefault(salt, []).append(drawn)
    first, again = recorded[SECRET]
    assert all(torch.equal(a, b) for a, b in zip(first, again))  # graded twice: the same inputs
    other = recorded[SECRET ^ (1 << 100)][0]
    assert not any(torch.equal(a, b) for a in first for b in other)


def test_the_untrusted_mode_reads_its_secret_from_the_environment(monkeypatch):
    monkeypatch.delenv(SECRET_VARIABLE, raising=False)
    assert untrusted_secret() == 0
    monkeypatch.setenv(SECRET_VARIABLE, str(SECRET))
    assert untrusted_secret() == SECRET
    monkeypatch.setenv(SECRET_VARIABLE, "pas un nombre")
    assert untrusted_secret() == 0


# ------------------------------------------------------------------ the course secret
def test_a_new_course_gets_a_256_bit_secret_readable_by_its_owner_only(tmp_path):
    secret = trusted.course_salt(tmp_path)
    assert secret.bit_length() == trusted.SECRET_BITS
    path = tmp_path / trusted.SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert trusted.course_salt(tmp_path) == secret  # kept: grading stays identical between runs


def test_a_short_secret_of_an_earlier_version_is_replaced_once(tmp_path):
    (tmp_path / trusted.SECRET_FILE).write_text(str((1 << 61) + 7))
    secret = trusted.course_salt(tmp_path)
    assert secret.bit_length() == trusted.SECRET_BITS and trusted.course_salt(tmp_path) == secret


def test_test_courses_pin_their_secret(tmp_path):
    from conftest import TEST_SECRET
    assert TEST_SECRET.bit_length() >= trusted.MIN_SECRET_BITS
    assert trusted.pin_secret(tmp_path, TEST_SECRET) == TEST_SECRET
    assert trusted.course_salt(tmp_path) == TEST_SECRET
    with pytest.raises(ValueError):
        trusted.pin_secret(tmp_path, 12345)


# ------------------------------------------------------------------ what student code writes is discarded
MARK = "FUITE-7d1e"


def noisy_pred(X, W, B):
    """Writes the check's inputs everywhere it can: print, sys.stderr, the interpreter's own streams,
    the file descriptors, a warning."""
    import warnings
    text = f"{MARK} {X.tolist()}"
    print(text)
    sys.stderr.write(text + "\n")
    sys.__stdout__.write(text + "\n")  # buffered: would come out after the call without the flush
    sys.__stderr__.write(text + "\n")
    os.write(1, text.encode() + b"\n")
    os.write(2, text.encode() + b"\n")
    warnings.warn(text)
    return torch.softmax(X @ W + B, dim=1)


def test_what_a_student_function_writes_during_a_check_is_discarded(capfd):
    print("avant")
    message = run_check("q2_pred", Witness(LocalTransport(section_2(noisy_pred)), salt=SECRET))
    sys.__stdout__.flush()
    print("après")
    os.write(2, b"apres-fd\n")
    out, err = capfd.readouterr()
    assert message is None  # a correct function that prints still passes
    assert MARK not in out and MARK not in err
    assert "avant" in out and "après" in out and "apres-fd" in err  # streams and fds restored


def grader_detecting_pred(X, W, B):
    """Recognises the grader (its stdout is not the notebook's, or the agent is on the call stack):
    then prints its arguments and answers from a table memorised for the inputs of the previous
    version's seeds; in a notebook it would compute the right answer."""
    frames = [f.filename for f in inspect.stack()]
    graded = type(sys.stdout).__name__ == "StringIO" or any("agent" in f for f in frames)
    if graded:
        print(MARK, X.tolist())
        os.write(1, f"{MARK} {X.tolist()}\n".encode())
        old = torch.Generator().manual_seed(1)  # what the 32-bit scheme drew first in untrusted mode
        if torch.equal(X, torch.rand(7, 5, generator=old, dtype=torch.float64)):
            return torch.softmax(X @ W + B, dim=1)
        return torch.full((X.shape[0], W.shape[1]), 1.0 / W.shape[1], dtype=X.dtype) + 0 * (X @ W).sum()
    return torch.softmax(X @ W + B, dim=1)


def test_a_function_that_recognises_the_grader_gains_nothing_and_leaks_nothing(capfd):
    message = run_check("q2_pred", Witness(LocalTransport(section_2(grader_detecting_pred)), salt=SECRET))
    out, err = capfd.readouterr()
    assert message and "softmax(XW + B)" in message
    assert MARK not in out + err + message
