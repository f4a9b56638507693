"""tpkit.grading.remote, the parts a machine of the cluster runs, without Dask: a submission rebuilt
from data (never outside its folder), the outputs sent back (regular files only, within a budget), the
course's fingerprint and the worker check. A packed submission seen by the pre-check as the original,
a course that differs refused, and whole runs on a cluster are in tests/grading/test_cluster.py."""
import os
import socket
import stat
from types import SimpleNamespace

import pytest

from tpkit.grading import remote, secret, staging, submission_files

A = "devoir"


def course(root, data=b"1,2,3\n"):
    (root / "release" / A).mkdir(parents=True)
    (root / "release" / A / f"{A}.ipynb").write_text("{}")
    (root / "source" / A).mkdir(parents=True)
    (root / "source" / A / f"{A}.ipynb").write_text("{'solution': 1}")
    (root / "source" / A / "donnees.csv").write_bytes(data)
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    secret.pin_secret(root, 1 << 200)
    return root


@pytest.mark.parametrize("rel", ["../evade", "/etc/evade", "a/../../evade", "", "a//b", "./a", "a/."])
def test_unpack_refuses_a_path_outside_the_submission(tmp_path, rel):
    packed = {"state": "dir", "entries": [("ok.txt", "file", b"ok", 0), (rel, "file", b"x", 0)]}
    with pytest.raises(ValueError, match="bad path in a packed submission"):
        remote.unpack(packed, tmp_path / "s1" / A)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["s1", f"s1/{A}", f"s1/{A}/ok.txt"]


def test_unpack_rebuilds_each_kind_of_entry(tmp_path):
    packed = {"state": "dir", "entries": [
        ("sous", "dir", None), ("sous/a.py", "file", b"print(1)", 1_700_000_000_000_000_000),
        ("gros.bin", "file", 5 << 20, 1_600_000_000_000_000_000), ("lien", "link", "../../secret"),
        ("tube", "other", None)]}
    dest = tmp_path / "s1" / A
    remote.unpack(packed, dest)
    assert (dest / "sous" / "a.py").read_bytes() == b"print(1)"
    assert (dest / "sous" / "a.py").stat().st_mtime_ns == 1_700_000_000_000_000_000
    assert (dest / "gros.bin").stat().st_size == 5 << 20 and (dest / "gros.bin").stat().st_blocks == 0
    assert os.readlink(dest / "lien") == "../../secret"  # recreated, never followed here
    assert stat.S_ISFIFO((dest / "tube").lstat().st_mode)
    linked = tmp_path / "s2" / A
    remote.unpack({"state": "linked", "entries": []}, linked)
    assert linked.is_symlink() and not linked.exists()
    remote.unpack({"state": "absent", "entries": []}, tmp_path / "s3" / A)
    assert not (tmp_path / "s3" / A).exists() and (tmp_path / "s3").is_dir()


def test_pack_sends_notebooks_within_the_submission_budget_and_stops_past_the_pre_check_s_count(
        tmp_path, monkeypatch):
    src = tmp_path / A
    src.mkdir()
    for name in ("a.ipynb", "b.ipynb"):
        (src / name).write_bytes(b"{" + b" " * 3000 + b"}")
    monkeypatch.setattr(staging, "MAX_KEPT_FILE_BYTES", 100)
    monkeypatch.setattr(remote, "MAX_SUBMISSION_BYTES", 4000)
    entries = {e[0]: e[2] for e in remote.pack(src)["entries"]}
    assert sorted(entries) == ["a.ipynb", "b.ipynb"]
    assert sorted(type(v).__name__ for v in entries.values()) == ["bytes", "int"]  # the second: its size
    for i in range(10):
        (src / f"f{i}.txt").write_text("x")
    monkeypatch.setattr(submission_files, "MAX_SCANNED", 5)
    assert len(remote.pack(src)["entries"]) == 6  # one more than the pre-check looks at


def test_outputs_sent_back_are_regular_files_within_the_budget(tmp_path):
    out = tmp_path / "feedback" / "s1" / A
    (out / "img").mkdir(parents=True)
    (out / "page.html").write_bytes(b"p" * 60)
    (out / "img" / "f.png").write_bytes(b"i" * 40)
    os.symlink("/etc/passwd", out / "lien")
    os.mkfifo(out / "tube")
    (tmp_path / "ailleurs").mkdir()
    (tmp_path / "ailleurs" / "secret.txt").write_text("x")
    os.symlink(tmp_path / "ailleurs", out / "dossier-lien")
    assert remote.collect(out, 100) == {"page.html": b"p" * 60, "img/f.png": b"i" * 40}
    with pytest.raises(ValueError, match="sorties trop volumineuses"):
        remote.collect(out, 99)
    assert remote.collect(tmp_path / "absent", 100) == {}
    os.symlink(out, tmp_path / "lien-vers-sorties")
    assert remote.collect(tmp_path / "lien-vers-sorties", 100) == {}


def test_the_fingerprint_follows_the_release_the_data_and_the_secret_not_the_source_notebook(tmp_path):
    root = course(tmp_path / "cours")
    first = remote.fingerprint(root, A)
    assert set(first) == set(remote.COURSE_PARTS)
    (root / "source" / A / f"{A}.ipynb").write_text("{'solution': 2}")  # nbgrader restores data only
    assert remote.fingerprint(root, A) == first
    (root / "source" / A / "donnees.csv").write_bytes(b"1,2,4\n")
    assert {p for p, h in remote.fingerprint(root, A).items() if h != first[p]} == {"data"}
    (root / "release" / A / "nouveau.txt").write_text("x")
    secret.pin_secret(root, (1 << 200) + 1)
    assert {p for p, h in remote.fingerprint(root, A).items() if h != first[p]} == {"data", "release", "secret"}


def test_a_machine_without_the_course_refuses_in_french(tmp_path):
    with pytest.raises(remote.CourseMismatch, match="pas de cours dans .*nbgrader_config.py absent"):
        remote.check_course(tmp_path, A, {})


def test_the_worker_check_answers_with_a_sentence_never_an_error(tmp_path, monkeypatch):
    root = course(tmp_path / "cours")
    stamp = remote.fingerprint(root, A)
    assert remote.check_worker(str(root), A, stamp, sandbox=False) == ""
    assert "diffère de celui qui corrige (données de source/devoir)" in remote.check_worker(
        str(root), A, dict(stamp, data="autre"), sandbox=False)
    assert remote.check_worker(str(root), A, None, sandbox=False).startswith(
        f"{socket.gethostname()} : AttributeError : ")
    monkeypatch.setattr(remote.multiprocessing, "current_process", lambda: SimpleNamespace(daemon=True))
    assert remote.check_worker(str(root), A, stamp, sandbox=False) == remote.NOT_DAEMON


def test_the_task_s_course_view_links_the_course_and_has_its_own_exports(tmp_path):
    root = course(tmp_path / "cours")
    view = remote._course_view(root, tmp_path / "vue")
    for name in ("nbgrader_config.py", "source", "release", secret.SECRET_FILE):
        assert os.readlink(view / name) == str(root / name)
    assert (view / "exports").is_dir() and not (view / "exports").is_symlink()
    assert not (root / "exports").exists()


def test_the_test_only_kill_fault_is_told_apart_from_a_worker_fault(tmp_path):
    assert remote._fault({}) == ("", None)
    assert remote._fault({"fault": "crash"}) == ("crash", None)
    assert remote._fault({"fault": f"{remote.KILL_FAULT}{tmp_path / 'm'}"}) == ("", tmp_path / "m")
