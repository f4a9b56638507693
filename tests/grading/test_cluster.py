"""A class bigger than one process (issue #27): the same per-submission workers on the machines of a Dask
cluster (tpkit.grading.cluster, tpkit.grading.remote), the workers' private gradebooks
(tpkit.grading.bookcopy), and a PostgreSQL gradebook that only the coordinator writes.

The slow tests compare with the local run of tests/grading/test_pipeline.py (`first_run`: the examples,
graded once per session with the same options), so they grade only a few submissions themselves.
"""
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from conftest import generated_course
from nbgrader.api import Gradebook
from test_pipeline import CELL_TIMEOUT, course, first_run, read_csv, scores, shared  # noqa: F401 (fixtures)

from tpkit import release
from tpkit.grading import bookcopy, cluster, options, remote, trusted
from tpkit.grading import staging, submission_files
from tpkit.grading.expected import Expected

MAIN = "tp_reseaux_neurones"  # the course's main assignment

A = MAIN


# ------------------------------------------------------------------ a submission as data

def test_a_packed_submission_is_seen_by_the_pre_check_as_the_original(tmp_path):
    src = tmp_path / "submitted" / "s1" / A
    (src / "sous-dossier" / ".ipynb_checkpoints").mkdir(parents=True)
    notebook = nbformat.v4.new_notebook()
    (src / f"{A}.ipynb").write_text(nbformat.writes(notebook), encoding="utf-8")
    (src / "timestamp.txt").write_text("2026-12-01 10:00:00\n")
    (src / "sous-dossier" / "aide.py").write_text("import os\n")
    (src / "sous-dossier" / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text("{}")
    with open(src / "gros.bin", "wb") as f:  # 50 MB the pre-check never reads: sent as a size
        f.truncate(50 * 1024 * 1024)
    os.symlink("/etc/passwd", src / "lien")
    os.mkfifo(src / "tube")
    packed = remote.pack(src)
    assert sum(len(e[2]) for e in packed["entries"] if isinstance(e[2], bytes)) < 100_000
    dest = tmp_path / "ailleurs" / "s1" / A
    remote.unpack(packed, dest)
    assert submission_files.scan(dest) == submission_files.scan(src)
    assert (dest / f"{A}.ipynb").read_bytes() == (src / f"{A}.ipynb").read_bytes()
    assert os.readlink(dest / "lien") == "/etc/passwd"
    assert (dest / "gros.bin").stat().st_size == 50 * 1024 * 1024
    assert (dest / "timestamp.txt").stat().st_mtime == (src / "timestamp.txt").stat().st_mtime
    expected = Expected(A, A, {}, [], 1.0)
    assert staging.locate(dest, expected)[0] == dest / f"{A}.ipynb"


def test_a_linked_or_missing_submission_folder_stays_so(tmp_path):
    (tmp_path / "ailleurs").mkdir()
    (tmp_path / "s1").mkdir()
    os.symlink(tmp_path / "ailleurs", tmp_path / "s1" / A)
    expected = Expected(A, A, {}, [], 1.0)
    remote.unpack(remote.pack(tmp_path / "s1" / A), tmp_path / "copie" / "s1" / A)
    assert staging.locate(tmp_path / "copie" / "s1" / A, expected)[2] == staging.LINKED_FOLDER
    remote.unpack(remote.pack(tmp_path / "s2" / A), tmp_path / "copie" / "s2" / A)
    assert staging.locate(tmp_path / "copie" / "s2" / A, expected)[2] == "aucun rendu"


def test_outputs_from_a_machine_stay_in_the_submission_folder(tmp_path):
    cluster._write_outputs(tmp_path, "s1", A, {"feedback/tp.html": b"<p>ok</p>", "autograded/../../evade": b"x",
                                               "/etc/evade": b"x", "exports/grades.csv": b"x"})
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == [f"feedback/s1/{A}/tp.html"]


# ------------------------------------------------------------------ the workers' gradebooks

@pytest.fixture(scope="module")
def small_gradebook(tmp_path_factory) -> Path:
    """A gradebook of one assignment, two students (a manual score for one, an automatic one for the
    other), made once for this file's tests (nbgrader runs alembic: the venv's, on PATH)."""
    path = tmp_path_factory.mktemp("gradebook") / "run.db"
    url = f"sqlite:///{path}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", release.nbgrader_env()["PATH"])
        _fill(url)
    return path


def _fill(url: str) -> None:
    with Gradebook(url, "cours") as gb:
        gb.add_assignment("a")
        gb.add_notebook("a", "a")
        gb.add_grade_cell("q1", "a", "a", max_score=2, cell_type="code")
        gb.add_grade_cell("m1", "a", "a", max_score=1, cell_type="markdown")
        for student in ("alice_etudiante", "bob_autre_etudiant"):
            gb.add_student(student)
            gb.add_submission("a", student)
        grade = gb.find_grade("m1", "a", "a", "alice_etudiante")
        grade.manual_score = 0.5
        grade = gb.find_grade("q1", "a", "a", "bob_autre_etudiant")
        grade.auto_score = 2.0
        gb.db.commit()


def test_a_machine_gets_the_course_and_its_student_only(tmp_path, small_gradebook):
    model = bookcopy.template(small_gradebook)
    data = bookcopy.student_copy(small_gradebook, model, "alice_etudiante", tmp_path)
    assert b"bob_autre_etudiant" not in data and b"bob_autre_etudiant" not in model
    (tmp_path / "alice.db").write_bytes(data)
    with Gradebook(f"sqlite:///{tmp_path / 'alice.db'}", "cours") as gb:
        assert [s.id for s in gb.students] == ["alice_etudiante"]
        assert gb.find_grade("m1", "a", "a", "alice_etudiante").manual_score == 0.5
        assert gb.find_grade_cell("q1", "a", "a").max_score == 2
    (tmp_path / "modele.db").write_bytes(model)
    with Gradebook(f"sqlite:///{tmp_path / 'modele.db'}", "cours") as gb:
        assert gb.students == [] and [a.name for a in gb.assignments] == ["a"]


def _rows(url: str) -> dict:
    from nbgrader.api import Base
    from sqlalchemy import create_engine, select
    engine = create_engine(url)
    try:
        with engine.connect() as con:
            return {t.name: sorted(tuple(map(str, r)) for r in con.execute(select(t)))
                    for t in Base.metadata.sorted_tables}
    finally:
        engine.dispose()


def test_a_gradebook_copy_holds_every_row(tmp_path, small_gradebook):
    url = f"sqlite:///{small_gradebook}"
    bookcopy.copy_gradebook(url, f"sqlite:///{tmp_path / 'b.db'}")
    assert _rows(f"sqlite:///{tmp_path / 'b.db'}") == _rows(url) and _rows(url)["grade"]
    with pytest.raises(ValueError):  # never into a database that has tables
        bookcopy.copy_gradebook(url, f"sqlite:///{tmp_path / 'b.db'}")


# ------------------------------------------------------------------ what a machine must have

def tiny_course(root: Path, secret: int = 1 << 255, release_text: str = "{}") -> Path:
    (root / "release" / "a").mkdir(parents=True)
    (root / "release" / "a" / "a.ipynb").write_text(release_text)
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    if secret:
        trusted.pin_secret(root, secret)
    return root


def test_a_machine_with_another_course_or_no_secret_refuses_to_grade(tmp_path):
    stamp = remote.fingerprint(tiny_course(tmp_path / "ici"), "a")
    assert "secret" in stamp and str(1 << 255) not in json.dumps(stamp)  # hashes, never the secret
    remote.check_course(tiny_course(tmp_path / "la-bas"), "a", stamp)
    with pytest.raises(remote.CourseMismatch, match="secret du cours"):
        remote.check_course(tiny_course(tmp_path / "autre-secret", secret=(1 << 255) + 1), "a", stamp)
    with pytest.raises(remote.CourseMismatch, match="pas de secret"):
        remote.check_course(tiny_course(tmp_path / "sans-secret", secret=0), "a", stamp)
    with pytest.raises(remote.CourseMismatch, match="release/a"):
        remote.check_course(tiny_course(tmp_path / "autre-release", release_text="[]"), "a", stamp)
    other_data = tiny_course(tmp_path / "autres-donnees")
    (other_data / "source" / "a").mkdir(parents=True)
    (other_data / "source" / "a" / "donnees.csv").write_text("x\n1\n")
    with pytest.raises(remote.CourseMismatch, match="données de source/a"):
        remote.check_course(other_data, "a", stamp)
    assert not (tmp_path / "sans-secret" / trusted.SECRET_FILE).exists()  # not created behind our back


def test_the_cluster_and_a_server_gradebook_come_from_the_configuration(tmp_path):
    from tpkit.grading import config
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    root = tmp_path.resolve()
    assert config.dask_target(config.build(root), root) == (None, str(root))
    assert options.server_db_url(tmp_path) is None
    with open(tmp_path / "nbgrader_config.py", "a") as f:
        f.write('c.TpkitGrading.dask_scheduler = "tcp://ordonnanceur:8786"\n'
                'c.TpkitGrading.dask_course_root = "/partage/cours"\n'
                'c.CourseDirectory.db_url = "postgresql://tpkit@serveur/notes"\n')
    assert config.dask_target(config.build(root), root) == ("tcp://ordonnanceur:8786", "/partage/cours")
    given = config.build(root, {"dask_scheduler": "local:2"})
    assert config.dask_target(given, root)[0] == "local:2"  # the command line wins
    assert options.server_db_url(tmp_path) == "postgresql://tpkit@serveur/notes"


def test_a_bad_local_cluster_size_is_refused_in_french():
    pytest.importorskip("distributed")
    with pytest.raises(cluster.ClusterError, match="local:N"):
        cluster.connect("local:deux")


# ------------------------------------------------------------------ grading runs (slow)

SUBSET = ["json_invalide", "reference", "test_supprime", "vierge"]  # failed, ok (full marks), partial, ok (0)
ADDRESS = re.compile(r"0x[0-9a-f]{6,}")


def grade_in(root: Path, *args, env=None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "tpkit.grading", "--root", str(root), "--workers", "2", *args]
    return subprocess.run(cmd, cwd=root, env=env or release.nbgrader_env(), capture_output=True, text=True,
                          timeout=600)


def page(root: Path, student: str) -> str:
    return ADDRESS.sub("0x", (root / "feedback" / student / A / f"{A}.html").read_text(encoding="utf-8"))


def same_as_first_run(root: Path, students: list, local_run) -> None:
    _, first_rows, first_scores, saved = local_run
    rows = read_csv(root)
    assert sorted(rows) == sorted(students)
    for student in students:
        assert rows[student] == first_rows[student], student
        if student in first_scores:
            assert json.loads(json.dumps(scores(root, student))) == first_scores[student], student
        assert page(root, student) == page(saved, student), student


@pytest.mark.slow
def test_a_local_cluster_grades_like_the_local_run(first_run, session_dir, tmp_path):  # noqa: F811 (fixture)
    """Two Dask worker processes (`--dask-scheduler local:2`): the grades, statuses and feedback of the
    local run, the gradebook and the course's folders written by the coordinator."""
    pytest.importorskip("distributed")
    root = generated_course(session_dir, tmp_path / "course")
    proc = grade_in(root, "--examples", "--students", ",".join(SUBSET), "--cell-timeout", CELL_TIMEOUT,
                    "--dask-scheduler", "local:2")
    assert proc.returncode == 0, proc.stderr
    assert "rendu(s) sur le cluster Dask local:2" in proc.stdout
    same_as_first_run(root, SUBSET, first_run)
    assert (root / "exports" / "logs" / "reference.log").stat().st_size > 0  # the machine's log, written here


CLUSTER_CONFIG = '''
def _cluster():  # a cluster object from the configuration, as dask-jobqueue's SLURMCluster would be
    import dask
    from distributed import LocalCluster
    dask.config.set({"distributed.worker.daemon": False})
    return LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
c.TpkitGrading.dask_cluster = _cluster
'''


@pytest.mark.slow
def test_a_killed_dask_worker_costs_a_retry_only(first_run, session_dir, tmp_path):  # noqa: F811 (fixture)
    """The Dask worker grading `vierge` is killed mid-run (SIGKILL, its submission's worker and kernel at
    work): the scheduler runs the task again, and each submission is written once, with the grade of
    the local run."""
    pytest.importorskip("distributed")
    root = generated_course(session_dir, tmp_path / "course")
    with open(root / "nbgrader_config.py", "a", encoding="utf-8") as f:
        f.write(CLUSTER_CONFIG)
    marker = tmp_path / "tentatives"
    env = dict(release.nbgrader_env(), TPKIT_TEST_WORKER_FAULTS=f"vierge:{remote.KILL_FAULT}{marker}")
    proc = grade_in(root, "--examples", "--students", "partiel,vierge", "--cell-timeout", CELL_TIMEOUT, env=env)
    assert proc.returncode == 0, proc.stderr
    attempts = marker.read_text().split()
    assert len(attempts) == 2 and attempts[0] != attempts[1]  # killed once, graded by another process
    for student in ("partiel", "vierge"):  # one progress line each: written once
        assert len(re.findall(rf"^\[\s*\d/2\] {student}\b", proc.stdout, re.M)) == 1, proc.stdout
    report = json.loads((root / "exports" / "grading_report.json").read_text(encoding="utf-8"))
    assert report["graded_now"] == ["partiel", "vierge"]
    same_as_first_run(root, ["partiel", "vierge"], first_run)


# ------------------------------------------------------------------ PostgreSQL

PG_BIN = Path("/usr/local/bin")


@pytest.fixture
def postgres():
    """A PostgreSQL server of its own in a temporary folder (Unix socket only), as pytest-postgresql
    starts one; yields the database URL."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL is not installed (initdb)")
    psycopg2 = pytest.importorskip("psycopg2")
    base = Path(tempfile.mkdtemp(prefix="tpkit-pg-"))
    as_user = []
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base)
            pytest.skip("running as root without a postgres account")
        os.chown(base, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = base / "data"
    try:
        subprocess.run([*as_user, str(PG_BIN / "initdb"), "-D", str(data), "-U", "tpkit", "--auth=trust",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=120)
        subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w",
                        "-o", f"-k {base} -c listen_addresses='' -p 5432 -F", "start"],
                       check=True, capture_output=True, timeout=120)
        con = psycopg2.connect(host=str(base), port=5432, user="tpkit", dbname="postgres")
        con.autocommit = True
        con.cursor().execute("CREATE DATABASE gradebook")
        con.close()
        yield f"postgresql+psycopg2://tpkit@/gradebook?host={base}&port=5432"
    finally:
        subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_a_postgresql_gradebook_is_written_by_the_coordinator_only(first_run, postgres, session_dir,  # noqa: F811
                                                                   tmp_path):
    """The course's gradebook moved to PostgreSQL (bookcopy's command), `db_url` pointing at it: two
    submissions graded get the local run's grades in the server database, no sqlite file appears, and
    a manual grade entered there (as the formgrader does) reaches the exports."""
    root = generated_course(session_dir, tmp_path / "course")
    bookcopy.copy_gradebook(f"sqlite:///{root / 'gradebook.db'}", postgres)
    (root / "gradebook.db").unlink()
    with open(root / "nbgrader_config.py", "a", encoding="utf-8") as f:
        f.write(f"\nc.CourseDirectory.db_url = {postgres!r}\n")
    proc = grade_in(root, "--examples", "--students", "partiel,vierge", "--cell-timeout", CELL_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert not (root / "gradebook.db").exists()
    _, first_rows, first_scores, _ = first_run
    with Gradebook(postgres, "rn_pytorch") as gb:
        assert sorted(s.student.id for s in gb.find_assignment(A).submissions) == ["partiel", "vierge"]
        for student in ("partiel", "vierge"):
            sub = gb.find_submission_notebook(A, A, student)
            got = {g.cell.name: [g.auto_score, g.manual_score, g.needs_manual_grade, g.max_score] for g in sub.grades}
            assert json.loads(json.dumps(got)) == first_scores[student], student
        grade = gb.find_grade("m2_approximation", A, A, "partiel")
        grade.manual_score, grade.needs_manual_grade = 0.5, False
        gb.db.commit()
    assert {s: r for s, r in read_csv(root).items()} == {s: first_rows[s] for s in ("partiel", "vierge")}
    proc = grade_in(root, "--export-only", "--students", "partiel")
    assert proc.returncode == 0, proc.stderr
    after = read_csv(root)
    assert after["partiel"]["m2_approximation"] == "0.5"
    assert float(after["partiel"]["total_20"]) == float(first_rows["partiel"]["total_20"]) + 0.5
