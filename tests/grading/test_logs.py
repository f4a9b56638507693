"""tpkit.grading.logs: one log file per student and run. That every line is inert (and the terminal's
warnings too, once) is tested in tests/grading/test_inert.py; here the files themselves: one per
student, replaced by the next run, closed after the submission, kept off the terminal."""
import logging

from tpkit.grading.logs import student_log, terminal_log
from tpkit.grading.options import Options

MAIN = "tp_reseaux_neurones"  # the course's main assignment


def test_each_student_gets_their_own_file_in_the_exports_logs_folder(tmp_path):
    options = Options(assignment=MAIN, root=tmp_path)
    with student_log(options, "alice") as a, student_log(options, "bob") as b:
        a.info("alice corrigée")
        b.warning("bob : cellule en erreur")
    logs = options.exports / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["alice.log", "bob.log"]
    alice, bob = (logs / "alice.log").read_text("utf-8"), (logs / "bob.log").read_text("utf-8")
    assert "INFO alice corrigée" in alice and "bob" not in alice
    assert "WARNING bob : cellule en erreur" in bob and "alice" not in bob


def test_a_new_run_replaces_the_student_s_log(tmp_path):
    options = Options(assignment=MAIN, root=tmp_path)
    with student_log(options, "alice") as log:
        log.info("premier passage")
    with student_log(options, "alice") as log:
        log.info("second passage")
    text = (options.exports / "logs" / "alice.log").read_text("utf-8")
    assert "second passage" in text and "premier passage" not in text


def test_the_log_is_closed_on_exit_even_after_an_error(tmp_path):
    options = Options(assignment=MAIN, root=tmp_path)
    try:
        with student_log(options, "alice") as log:
            log.info("avant")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert log.handlers == []  # no file left open between submissions
    log.error("après")  # a late message of that submission goes nowhere near the file
    assert "après" not in (options.exports / "logs" / "alice.log").read_text("utf-8")


def test_a_student_s_messages_stay_off_the_terminal(tmp_path, capsys):
    """The terminal shows one line per submission: a submission's nbgrader messages go to its log only."""
    terminal_log()
    with student_log(Options(assignment=MAIN, root=tmp_path), "alice") as log:
        log.error("trace de la cellule 12")
    captured = capsys.readouterr()
    assert "trace de la cellule 12" not in captured.err + captured.out
    assert not log.propagate


def test_terminal_warnings_follow_the_current_stderr(capsys):
    """The handler writes to sys.stderr as it is when the message is written (pytest and the CLI swap it)."""
    terminal_log()
    logging.getLogger("tpkit.grading").warning("avertissement visible")
    logging.getLogger("tpkit.grading").info("détail invisible")  # below the terminal's level
    err = capsys.readouterr().err
    assert "avertissement visible" in err and "détail invisible" not in err
