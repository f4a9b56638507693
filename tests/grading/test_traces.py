"""tpkit.grading.traces: the French flags of a graded notebook (attempts on the grader), on crafted
notebooks. A refused witness answer flagged through a real check is in tests/test_witness.py; that honest
code (the catalogue's variants, the bundled examples) raises no flag is checked where those are graded."""
import nbformat
import pytest

from tpkit.grading import traces

v4 = nbformat.v4


def answer(source, gid="q2_pred"):
    return v4.new_code_cell(source, metadata={"nbgrader": {"solution": True, "grade": False, "grade_id": gid}})


def graded(source, gid="q2_pred_test", outputs=()):
    return v4.new_code_cell(source, outputs=list(outputs),
                            metadata={"nbgrader": {"grade": True, "solution": False, "grade_id": gid,
                                                   "points": 1}})


def error(ename, evalue):
    return v4.new_output("error", ename=ename, evalue=evalue, traceback=[])


def nb(*cells, sandbox=None):
    book = v4.new_notebook(cells=list(cells))
    if sandbox is not None:
        book.metadata["tpkit"] = {"sandbox": sandbox}
    return book


def test_honest_code_raises_no_flag():
    honest = answer("import torch\ndef pred(X, W, B):\n    return torch.softmax(X @ W + B, dim=1)\n"
                    "data = open('/home/etudiant/donnees.csv').read()\nget_ipython().run_line_magic('matplotlib', 'inline')")
    assert traces.flags(nb(honest, v4.new_markdown_cell("subprocess, /proc/ et tpkit en texte"))) == []


@pytest.mark.parametrize("line, target", [
    ("import tpkit.checks", "le correcteur"),
    ("sys.modules['_tpkit_agent'].x = 1", "le correcteur"),
    ("get_ipython().run_cell('x')", "l'interpréteur"),
    ("os.kill(os.getppid(), 9)", "des processus"),
    ("open('/proc/self/environ').read()", "le système"),
    ("import socket", "le réseau"),
    ("open('../../gradebook.db')", "le correcteur"),
    ("open('../notes.txt')", "des fichiers hors du TP"),
])
def test_code_aimed_at_the_grader_or_the_system_is_flagged_with_its_line(line, target):
    flags = traces.flags(nb(answer(f"x = 1\n{line}\n")))
    assert len(flags) == 1 and flags[0].startswith("code qui vise " + target)
    assert line[:60] in flags[0]


def test_comments_and_test_cells_are_not_the_student_s_code():
    commented = answer("# import subprocess ne marche pas ici\n    # os.kill(1, 9)\nx = 1")
    hidden = graded("from tpkit.checks import verifier\nverifier('q2_pred', globals())")
    assert traces.flags(nb(commented, hidden)) == []


def test_one_quote_per_target_the_first_line_kept_and_cut_at_60_characters():
    long_line = "subprocess.run(['ls'])  # " + "x" * 100
    flags = traces.flags(nb(answer(long_line + "\nos.system('id')"), answer("import socket", "q3")))
    assert len(flags) == 1
    assert flags[0].count("des processus") == 1 and long_line[:60] in flags[0] and "os.system" not in flags[0]
    assert "le réseau : « import socket »" in flags[0]


def test_blocked_actions_are_flagged_by_cell_three_at_most():
    cells = [graded("assert ok", gid=f"t{i}", outputs=[error("PermissionError",
                                                                  "[Errno 13] Permission denied: '/x'")])
             for i in range(5)]
    cells.append(v4.new_code_cell("open('x', 'w')", outputs=[v4.new_output("stream", name="stderr",
                                                                             text="OSError: Read-only file system")]))
    flags = traces.flags(nb(*cells))
    assert flags == ["action bloquée par le bac à sable : Permission denied (cellule t0), "
                     "Permission denied (cellule t1), Permission denied (cellule t2)"]


def test_a_cell_without_grade_id_is_named_by_its_position():
    cell = v4.new_code_cell("x", outputs=[error("ModuleNotFoundError", "No module named 'tpkit'")])
    assert traces.flags(nb(v4.new_markdown_cell("titre"), cell)) == [
        "action bloquée par le bac à sable : No module named 'tpkit (cellule n°2)"]


def test_an_ordinary_error_is_not_a_blocked_action():
    cell = v4.new_code_cell("x", outputs=[error("NameError", "name 'x' is not defined")])
    assert traces.flags(nb(cell)) == []


def test_the_sandbox_s_remarks_are_passed_on_after_the_notebook_s_own_flags():
    flags = traces.flags(nb(answer("import socket"), sandbox=["3 processus laissés derrière le noyau"]))
    assert flags[0].startswith("code qui vise le réseau") and flags[1] == "3 processus laissés derrière le noyau"
