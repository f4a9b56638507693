"""The grading command (tpkit.grading.__main__): French errors, exit statuses, nothing written on a bad
argument."""
import shutil
import subprocess
import sys

from tpkit import paths
from tpkit.grading import __main__ as grading_main
from tpkit.grading import config, export
from test_export import old_exports  # tests/grading/test_export.py

MAIN = "tp_reseaux_neurones"  # the course's main assignment


def test_no_user_namespaces_stops_with_a_french_message(tmp_path, monkeypatch, capsys):
    """Where the host forbids user namespaces: one French line saying how to allow them or how to grade
    unsandboxed on purpose, exit status 2, nothing written."""
    from tpkit.grading import __main__ as cli
    from tpkit.grading import sandbox, sandbox_oneoff

    def refuse():
        raise sandbox.SandboxUnavailable("Bac à sable indisponible : les espaces de noms utilisateur sont "
                                         "interdits (sysctl kernel.unprivileged_userns_clone=1), ou "
                                         "--sans-bac-a-sable")
    monkeypatch.setattr(sandbox_oneoff, "check_available", refuse)
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")  # a course (arguments are checked first)
    (tmp_path / "release" / MAIN).mkdir(parents=True)
    assert cli.main(["--root", str(tmp_path), "--examples"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("erreur : Bac à sable indisponible") and "--sans-bac-a-sable" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nbgrader_config.py", "release"]


ASSIGNMENT = MAIN


def test_export_only_finds_the_report_set_aside(tmp_path, monkeypatch, capsys):
    exports = tmp_path / "exports"
    old_exports(exports)
    export.set_aside_previous_exports(exports)
    seen = {}

    def fake_export_all(options, run, worksheet=None, provisional=False, lms=None):
        seen["students"] = list(run.results)
        return run, ["Notes : exports/grades.csv"]

    monkeypatch.setattr("tpkit.grading.export.export_all", fake_export_all)
    monkeypatch.setattr("tpkit.grading.classreport.write", lambda options, run: [])
    shutil.copy(paths.ROOT / "nbgrader_config.py", tmp_path)  # a course: configuration, release, gradebook
    (tmp_path / "release" / ASSIGNMENT).mkdir(parents=True)
    (tmp_path / "gradebook.db").write_bytes(b"")
    code = grading_main.main(["--export-only", "--no-feedback", "--root", str(tmp_path),
                              "--grader-memory-limit", "0"])
    assert code == 0 and seen["students"] == ["ancien"]
    assert "exports/precedent/grading_report.json" in capsys.readouterr().out


def test_grader_memory_limit():
    assert grading_main.parse_args([]).grader_memory_limit is None  # not given: the configuration or the default
    assert config.default("grader_memory_limit") == 8192
    code = ("import resource\n"
            "from tpkit.grading.__main__ import limit_own_memory\n"
            "hard = resource.getrlimit(resource.RLIMIT_DATA)[1]\n"
            "limit_own_memory(256)\n"
            "soft, hard2 = resource.getrlimit(resource.RLIMIT_DATA)\n"
            "assert soft == 256 * 2**20 and hard2 == hard, (soft, hard2)\n"
            "try:\n"
            "    b = bytearray(512 * 2**20)\n"
            "except MemoryError:\n"
            "    print('MemoryError')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=paths.ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "MemoryError"
