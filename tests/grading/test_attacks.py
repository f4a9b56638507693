"""Adversarial suite (trusted grading): a class of hostile submissions graded in ONE run of the real
command, next to an honest student, in a temporary copy of the course. The run is shared with
test_attacks_box.py (tests/grading/attack_class.py): both suites' attackers are graded in the same class.

Each attack is what a student could hand in: code in an answer cell of the blank release (the rest left
blank), files next to the notebook, a hostile folder name. Every attack must end with: the attacker gains
no point (the blank release earns 0), the honest student's grades unchanged (full marks), the kit's and
the course's files byte-identical, the gradebook holding only what the grader wrote, the run complete,
no secret in any feedback page, and — where the attempt leaves a trace — the attempt flagged in the CSV's
status column with a reason. The table of attacks and outcomes is in docs/threat-model.md.
"""
import csv
import hashlib
import html
import io
import os
import re
import socket
import sqlite3
import subprocess
import threading
from pathlib import Path

import nbformat
import pytest
from attack_class import graded_class, students

from tpkit import paths
from tpkit.grading import sandbox, sandbox_oneoff
from tpkit.grading.inert import inert
from tpkit.submissions import read
from tpkit.vocabulary import grade_id

MAIN = "tp_reseaux_neurones"  # the course's main assignment

pytestmark = [pytest.mark.slow]

A = MAIN
CANARY = "canari-7f3a9c"  # in the grader's environment: must never reach a kernel or a page
FIRST_ANSWER = "r1_chargement"
HONEST = "honnete"
SPY_MARK = "fuite-entrees"  # what `entrees_espionnees` prints with the check's inputs (built at run time)


_MINIBATCH = ("np.random.seed(4)\nth.manual_seed(4)\nstep = 1\nmb = 20\nmlp_mb = MLP()\nniter_mb = 1000\n"
              "optimiseur_mb = th.optim.SGD(mlp_mb.parameters(), lr=step)\nlst_loss_mb = []\n"
              "for i in range(niter_mb):\n    idx = {idx}\n    loss = cout({Y}[idx], mlp_mb({X}[idx]))\n"
              "    lst_loss_mb.append(loss.item())\n    loss.backward()\n    optimiseur_mb.step()\n"
              "    optimiseur_mb.zero_grad()\n"
              "taux_test_mb = np.mean(np.argmax(mlp_mb(Xt).detach().numpy(), axis=1) == yt)\n")


def _attacks(root: Path, kit: Path, port: int) -> dict:
    """name -> (code of the first answer cell | {grade id: code} | None, extra files {relative path: bytes |
    ('link', target)}, flagged?) — flagged: the attempt leaves a trace the status column must report."""
    nbpath = f"{root}/source/{A}/{A}.ipynb"
    return {
        # --- grading oneself
        "faux_module": ("import sys, types\nm = types.ModuleType('tpkit.checks')\nm.verifier = lambda *a, **k: None\n"
                        "sys.modules['tpkit'] = types.ModuleType('tpkit')\nsys.modules['tpkit.checks'] = m\n", {}, True),
        "verifier_remplace": ("try:\n    import tpkit.checks\n    tpkit.checks.verifier = lambda *a, **k: None\n"
                              "except Exception as e:\n    print(e)\n", {}, True),
        "checks_vides": ("try:\n    import tpkit.checks.registry as q\n    q.CHECKS.clear()\nexcept Exception as e:\n"
                         "    print(e)\n", {}, True),
        "erreurs_cachees": ("ip = get_ipython()\norig = ip.run_cell_async\nasync def run(*a, **k):\n"
                            "    r = await orig(*a, **k)\n    r.error_in_exec = None\n    return r\n"
                            "ip.run_cell_async = run\nip.showtraceback = lambda *a, **k: None\n", {}, True),
        "paquet_depose": (None, {"tpkit/__init__.py": b"", "tpkit/checks/__init__.py":
                                 b"def verifier(*a, **k):\n    pass\n"}, True),
        "solutions_executees": (f"import json\ntry:\n    nb = json.load(open({nbpath!r}))\n"
                                "    for c in nb['cells']:\n        if c['cell_type'] == 'code':\n"
                                "            exec(''.join(c['source']), globals())\nexcept Exception as e:\n"
                                "    print(type(e).__name__)\n", {}, True),
        "allclose_torch": ("import torch\ntorch.allclose = lambda *a, **k: True\ntorch.isclose = lambda *a, **k: True\n",
                           {}, False),
        "allclose_numpy": ("import numpy\nnumpy.allclose = lambda *a, **k: True\nnumpy.array_equal = lambda *a: True\n",
                           {}, False),
        "tensor_lt": ("import torch\ntorch.Tensor.__lt__ = lambda a, b: True\ntorch.Tensor.__gt__ = lambda a, b: True\n",
                      {}, False),
        "abs_builtin": ("import builtins\nbuiltins.abs = lambda v: 0\n", {}, False),
        "toujours_egal": ("class Egal(float):\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n"
                          "    def __lt__(self, o): return True\n    def __le__(self, o): return True\n"
                          "x = xt = y = yt = Egal(0)\nn = d = p = Egal(3)\nY = Yt = X = Xt = Egal(1)\n", {}, False),
        "annonce_reussite": ("from IPython.display import display, HTML\nprint('Tous les tests sont passés ✔ 20/20')\n"
                             "display(HTML('<b>All tests passed</b>'))\n", {}, False),
        "agent_falsifie": ("import sys\nag = sys.modules.get('_tpkit_agent')\nif ag:\n"
                           "    ag.Agent.handle = lambda self, req: {'found': True, 'value': {'k': 'v', 'v': 3}, "
                           "'ok': True, 'items': [], 'lines': [], 'value_': 1}\n", {}, True),
        "agent_en_panne": ("import sys\nag = sys.modules.get('_tpkit_agent')\nif ag:\n"
                           "    ag.serve = lambda *a: 1 / 0\n", {}, True),
        # the check's session: answers forged for every request, as fast as the grader asks
        "session_detournee": ("import os, sys, torch\nag = sys.modules.get('_tpkit_agent')\n"
                              "def fake(bell, done):\n    folder = os.path.dirname(bell)\n"
                              "    with open(done, 'wb', buffering=0) as d, open(bell, 'rb') as b:\n"
                              "        for line in b:\n            t = line.strip().decode()\n"
                              "            if t == 'end':\n                break\n"
                              "            torch.save({'status': 'ok', 'answer': {'found': True, 'ok': True, "
                              "'value': {'k': 'v', 'v': 3}}}, os.path.join(folder, f'ans-{t}.pt'))\n"
                              "            d.write(line)\nif ag:\n    ag.session = fake\n", {}, True),
        "reparation_provoquee": ("### BEGIN HIDDEN TESTS\nfrom tpkit.checks import verifier\n"
                                 "verifier(\"q2_cout\", globals())\nverifier(\"q4_mlp_classe\", globals())\n"
                                 "### END HIDDEN TESTS\n", {}, True),
        # --- answers the checks cannot trust (issue 23): a gradient written by hand, not finite, instead of
        # loss.backward(), the visible checks silenced (NaN compares false: `err > tol` let it pass); a function that recognises the
        # grader and then prints the inputs it is given everywhere (they must reach no page) and answers
        # from a table memorised for the inputs of the former 32-bit seeding
        "gradient_nan": ("import torch\ndef _grads(*args):\n    for name, fill in (('W', float('nan')), "
                         "('B', float('inf'))):\n        t = globals().get(name)\n"
                         "        if isinstance(t, torch.Tensor) and t.requires_grad and t.is_leaf:\n"
                         "            t.grad = torch.full_like(t, fill)\n"
                         "get_ipython().events.register('post_run_cell', _grads)\n"
                         "_verification.__exit__ = lambda self, *erreur: True  # visible checks silenced\n",
                         {}, False),
        "entrees_espionnees": ("import inspect, os, sys, torch\nMARQUE = '-'.join(['fuite', 'entrees'])\n"
                               "def _espion(X, W, B):\n"
                               "    if type(sys.stdout).__name__ == 'StringIO' or any('agent' in f.filename "
                               "for f in inspect.stack()):\n"
                               "        texte = f'{MARQUE} {X.tolist()} {W.tolist()}'\n"
                               "        print(texte)\n        sys.__stdout__.write(texte)\n"
                               "        os.write(1, texte.encode())\n        os.write(2, texte.encode())\n"
                               "        old = torch.Generator().manual_seed(1)\n"
                               "        if torch.equal(X, torch.rand(7, 5, generator=old, dtype=torch.float64)):\n"
                               "            return torch.softmax(X @ W + B, dim=1)\n"
                               "    return torch.full((X.shape[0], W.shape[1]), 1.0 / W.shape[1], "
                               "dtype=X.dtype) + 0 * (X @ W + B).sum()\n"
                               "def _installe(*args):\n    globals()['pred'] = _espion\n"
                               "get_ipython().events.register('post_run_cell', _installe)\n", {}, False),
        # --- answers a training check used to accept without a loop (issue 23, item 2): re-run from the
        # grader's state (other training examples and seeds), the cell must train as it says. Blank release,
        # the cells named filled: Q3.6 taken from the repair of the blank Q3.1/3.2; minibatches drawn from the
        # test set; minibatches always among the mb first examples (each earned a point before)
        "recolte_reparations": ({"r3_sgd": "np.random.seed(1)\nth.manual_seed(1)\nstep = 1\nniter = 200\n"
                                           "optimiseur = th.optim.SGD([W, B], lr=step)\nlst_loss_sgd = list(lst_loss)\n"},
                                {}, False),
        "minibatchs_test": ({"r5_minibatch": _MINIBATCH.format(idx="th.randint(len(Xt), (mb,))", X="Xt", Y="Yt")},
                            {}, False),
        "minibatchs_fixes": ({"r5_minibatch": _MINIBATCH.format(idx="th.randint(mb, (mb,))", X="X", Y="Y")},
                             {}, False),
        # --- harming the others, the kit, the exports
        "tuer_parent": ("import os, signal\nfor pid in (os.getppid(), 1):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
                        "    except Exception as e:\n        print(e)\n", {}, True),
        "tuer_tout": ("import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept Exception as e:\n    print(e)\n",
                      {}, True),
        "kit_modifie": (f"try:\n    open({str(kit / 'tpkit/checks/__init__.py')!r}, 'a').write('\\nverifier = None\\n')\n"
                        f"except Exception as e:\n    print(e)\ntry:\n    open({str(root / 'nbgrader_config.py')!r}, 'a')"
                        ".write('\\nc = None\\n')\nexcept Exception as e:\n    print(e)\n", {}, True),
        "noyau_voisin": ("import glob, json\nfound = glob.glob('/tmp/tpkit-kernel-*/echange/kernel.json') + "
                         "glob.glob('/root/.local/share/jupyter/runtime/*.json')\nprint(found)\n"
                         "from jupyter_client import BlockingKernelClient\nfor f in found:\n    try:\n"
                         "        kc = BlockingKernelClient(connection_file=f); kc.load_connection_file(); kc.start_channels()\n"
                         "        kc.execute('W = None; pred = None; lst_loss = []')\n    except Exception as e:\n"
                         "        print(e)\n", {}, True),
        "gradebook_ecrit": (f"import sqlite3\ntry:\n    db = sqlite3.connect({str(root / 'gradebook.db')!r})\n"
                            "    db.execute('update grade set auto_score = 0')\n    db.execute(\"insert into student (id) "
                            "values ('pirate')\")\n    db.commit()\nexcept Exception as e:\n    print(e)\n", {}, True),
        "demon_exports": (f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                          f"        time.sleep(4)\n        try:\n            open({str(root / 'exports/grades.csv')!r}, 'w')"
                          ".write('pirate')\n        except Exception:\n            pass\n        os._exit(0)\n"
                          "    os._exit(0)\nos.wait()\n", {}, True),
        "lire_secrets": (f"import os, glob\nfor f in [{nbpath!r}, {str(root / 'gradebook.db')!r}, "
                         f"{str(root / 'exports/grades.csv')!r}, {str(root / '.grading_secret')!r}] + "
                         f"glob.glob({str(root / 'submitted/*/*/*.ipynb')!r}) + glob.glob('/proc/*/environ'):\n"
                         "    try:\n        print(f, open(f, 'rb').read()[:3000])\n    except Exception as e:\n"
                         "        print(f, e)\nprint(dict(os.environ))\n", {}, True),
        "environ_grader": ("import os\nfor pid in os.listdir('/proc'):\n    if pid.isdigit():\n        try:\n"
                           "            print(pid, open(f'/proc/{pid}/environ', 'rb').read()[:2000])\n"
                           "        except Exception as e:\n            print(pid, e)\n", {}, True),
        "lien_symbolique": (None, {"notes.txt": ("link", str(root / "gradebook.db")),
                                   "passwd": ("link", "/etc/passwd"), "cours": ("link", str(root))}, True),
        "ecrase_par_lien": (f"import os\nfor name in ({A + '.ipynb'!r}, 'digitz.npz'):\n    try:\n"
                            f"        os.remove(name); os.symlink({str(root / 'exports/grades.csv')!r}, name)\n"
                            "    except Exception as e:\n        print(e)\n", {}, True),
        "html_script": ("from IPython.display import display, HTML, Javascript\n"
                        "display(HTML('<script>document.title=\"pirate\"</script><img src=x onerror=\"alert(1)\">'))\n",
                        {}, False),
        "sortie_geante": ("for _ in range(300):\n    print('x' * 1_000_000)\n", {}, False),
        "bombe_mmap": ("import mmap\ntry:\n    m = mmap.mmap(-1, 8 << 30, flags=mmap.MAP_SHARED)\n"
                       "    for i in range(0, 8 << 30, 4096):\n        m[i] = 1\nexcept Exception as e:\n"
                       "    print(type(e).__name__, e)\n", {}, True),
        "bombe_shm": ("try:\n    with open('/dev/shm/remplir', 'wb') as f:\n        for _ in range(2048):\n"
                      "            f.write(b'x' * (1 << 20))\nexcept Exception as e:\n    print(type(e).__name__, e)\n",
                      {}, True),
        "bombe_fork": ("import os\nif os.fork() == 0:\n    while True:\n        try:\n            os.fork()\n"
                       "        except OSError:\n            pass\n", {}, True),
        "reseau_local": (f"import socket\ntry:\n    s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                         "    s.sendall(b'pirate')\nexcept Exception as e:\n    print(e)\n", {}, True),
        "processus_survivant": ("import subprocess\nsubprocess.Popen(['sleep', '1000'], start_new_session=True)\n",
                                {}, True),
        "disque_plein": ("try:\n    with open('gros.bin', 'wb') as f:\n        for _ in range(1024):\n"
                         "            f.write(b'x' * (1 << 20))\nexcept Exception as e:\n    print(type(e).__name__, e)\n",
                         {}, False),
        # a hostile student id (folder name) is handled by the CSV tests below
        '=HYPERLINK("x.example";"note")': ("x = 1\n", {}, False),
    }


def _hash_tree(folder: Path, skip=()) -> dict:
    out = {}
    for f in sorted(folder.rglob("*")):
        rel = f.relative_to(folder)
        if f.is_file() and not f.is_symlink() and not any(part in skip for part in rel.parts):
            out[str(rel)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _kit_files() -> dict:
    tracked = subprocess.run(["git", "ls-files"], cwd=paths.ROOT, capture_output=True, text=True).stdout.split()
    return {t: hashlib.sha256((paths.ROOT / t).read_bytes()).hexdigest() for t in tracked
            if (paths.ROOT / t).is_file()}


class Listener(threading.Thread):
    """A loopback TCP listener: records whatever reaches it."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.received.append(conn.recv(100))
            except OSError:
                continue


COURSE_SKIP = {"submitted", "autograded", "feedback", "exports", "gradebook.db"}  # what a run writes


@pytest.fixture(scope="session")
def attack_run(session_dir):
    """This suite's view of the class run shared with test_attacks_box.py (tests/grading/attack_class.py):
    its students are graded beside the other suite's, in the same run."""
    try:
        sandbox_oneoff.check_available()
    except sandbox.SandboxUnavailable as exc:
        pytest.skip(str(exc))
    run = graded_class(session_dir)
    run.update(returncode=run["run"]["returncode"], stdout=run["run"]["stdout"], stderr=run["run"]["stderr"],
               everyone=students(run))
    run["attacks"] = _attacks(run["root"], paths.ROOT, run["port"])
    return run


def lay_out(root: Path, attacks: dict) -> None:
    """Each attack's submission folder: the blank release with its code, plus its files."""
    for student, (code, files, _) in attacks.items():
        folder = root / "submitted" / student / A
        folder.mkdir(parents=True)
        nb = read(paths.release_notebook(MAIN))  # the blank release
        cells = code if isinstance(code, dict) else {FIRST_ANSWER: code}
        for cell in nb.cells:
            if cells.get(grade_id(cell)) is not None:
                cell.source = cells[grade_id(cell)]
        if student == "html_script":
            nb.cells.insert(1, nbformat.v4.new_markdown_cell(
                "<script>alert('md')</script><img src=x onerror=\"alert('md')\"> [lien](javascript:alert(1))"))
        nbformat.write(nb, str(folder / f"{A}.ipynb"))
        for rel, content in files.items():
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, tuple):
                os.symlink(content[1], target)
            else:
                target.write_bytes(content)


def _rows(root: Path) -> dict:
    text = (root / "exports" / "grades.csv").read_text(encoding="utf-8")
    return {row["student_id"]: row for row in csv.DictReader(io.StringIO(text))}


def _unescape(value: str) -> str:
    return value[1:] if value.startswith("'") else value


def test_run_completes_with_every_student(attack_run):
    root = attack_run["root"]
    assert attack_run["returncode"] == 0, attack_run["stdout"][-3000:] + attack_run["stderr"][-3000:]
    rows = {_unescape(k): v for k, v in _rows(root).items()}
    assert set(attack_run["attacks"]) | {HONEST} <= attack_run["everyone"]
    # this suite's students and test_attacks_box.py's (whose odd ids the CSV holds escaped)
    assert set(rows) == {inert(s) for s in attack_run["everyone"]}


def test_honest_student_keeps_full_marks(attack_run):
    row = _rows(attack_run["root"])[HONEST]
    assert float(row["total_20"]) == 17.5 and row["status"] == "ok"


@pytest.mark.parametrize("student", sorted(_attacks(Path("/x"), Path("/y"), 1)))
def test_attacker_gains_nothing(attack_run, student):
    rows = {_unescape(k): v for k, v in _rows(attack_run["root"]).items()}
    row = rows[student]
    assert row["total_20"] in ("0", ""), (student, row)
    flagged = attack_run["attacks"][student][2]
    if flagged:
        assert row["status"].startswith("flagged:"), (student, row["status"])
    if student == "processus_survivant":
        assert "processus laissé" in row["status"], (student, row["status"])


def test_kit_and_course_files_unchanged(attack_run):
    root = attack_run["root"]
    assert _kit_files() == attack_run["kit_before"]
    after = _hash_tree(root, skip=COURSE_SKIP)
    assert after == attack_run["course_before"]  # the pinned secret (conftest) included
    assert (root / "exports" / "grades.csv").read_text(encoding="utf-8").startswith("student_id,")


def test_gradebook_holds_only_what_the_grader_wrote(attack_run):
    root = attack_run["root"]
    db = sqlite3.connect(str(root / "gradebook.db"))
    students = {r[0] for r in db.execute("select id from student")}
    assert students == attack_run["everyone"]
    honest = dict(db.execute("select base_cell.name, grade.auto_score from grade join submitted_notebook on "
                             "grade.notebook_id = submitted_notebook.id join submitted_assignment on "
                             "submitted_notebook.assignment_id = submitted_assignment.id join base_cell on "
                             "grade.cell_id = base_cell.id where submitted_assignment.student_id = ?", (HONEST,)))
    assert sum(v or 0 for v in honest.values()) == 17.5


def test_no_secret_reaches_a_feedback_page(attack_run):
    root = attack_run["root"]
    secret = (root / ".grading_secret").read_text().strip()
    released = "\n".join(c.source for c in read(paths.release_notebook(MAIN)).cells)
    solution_lines = {line.strip() for c in read(paths.source_notebook(MAIN)).cells if "BEGIN SOLUTION" in c.source
                      for line in c.source.split("\n") if len(line.strip()) > 25 and line.strip() not in released
                      and "SOLUTION" not in line}
    assert solution_lines
    pages = list((root / "feedback").rglob("*.html"))
    with_page = {p.relative_to(root / "feedback").parts[0] for p in pages}
    others = attack_run["everyone"] - set(attack_run["attacks"]) - {HONEST}  # test_attacks_box.py's
    assert with_page - others == set(attack_run["attacks"]) | {HONEST}
    for page in pages:
        if page.parts[-3] in others:
            continue  # (what that suite asserts of its own pages)
        text = page.read_text(encoding="utf-8", errors="replace")
        if page.parts[-3] != HONEST:  # the instructor's solutions reach no attacker
            plain = html.unescape(re.sub(r"<[^>]+>", "", text))
            code = (attack_run["attacks"].get(page.parts[-3]) or (None,))[0] or ""  # what it wrote itself
            own = "\n".join(code.values()) if isinstance(code, dict) else code
            assert not [line for line in solution_lines if line in plain and line not in own], page
            assert HONEST not in plain, page  # nothing of another student (exports, gradebook, submission)
        markers = [CANARY, secret, "BEGIN HIDDEN", "BEGIN SOLUTION", "_tpkit_agent.Agent", SPY_MARK]
        if page.parts[-3] != "reparation_provoquee":  # its own answer cell calls verifier(...)
            markers.append("verifier(")
        for marker in markers:
            assert marker not in text, (page, marker)
        # nothing of the student's runs in a browser (their code stays visible as inert, escaped text)
        assert "<script" not in text, page  # the kit's page has no script of its own either
        assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", text, re.I), page
        assert not re.search(r"(href|src)\s*=\s*[\"']?\s*javascript:", text, re.I), page
        assert page.stat().st_size < 20 * 2**20, page
    assert not attack_run["received"]


def test_no_process_survives(attack_run):
    """Daemons, background jobs and fork bombs died with their sandbox (their kernel's folder is gone)."""
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    assert not [line for line in out if line.startswith("sleep 1000")]
    for line in out:
        m = re.search(r"(/tmp/tpkit-kernel-[^/ ]+)", line)
        assert not m or Path(m.group(1)).exists(), line
