"""Adversarial suite, issue 22 ("one submission, one box"): submissions that reach the rest of the class
through what the submissions share — the grading process, the CPU, the memory, the disk, what the
instructor reads — graded in ONE run of the real command next to an honest student, in a temporary
copy of the course (same pattern and helpers as tests/grading/test_attacks.py, whose attackers are graded
in the same class run: tests/grading/attack_class.py).

For each attack: the honest student's grade equals its grade when graded alone (a separate small run),
the run completes, the attacker gains nothing, its row says what happened, nothing outlives the run (no
process, file or cgroup of the run's kernels), and the class's wall time with and without the attackers
is printed (not asserted). Each attack is bounded by design (burners stop after a few seconds, fills are
a few GB at most) so that they cost the class about a minute of two cores.

Some of these assertions are targets for work not in every branch: CPU shares and memory / disk caps
per kernel (cgroups, size-limited scratch), inert output (control characters, CSP, framing of student
content, class report ids). docs/threat-model.md says which outcome each attack has today.
"""
import csv
import glob
import io
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from attack_class import graded_class, students
from test_attacks import FIRST_ANSWER, HONEST, _rows, _unescape

from tpkit import paths, release
from tpkit.grading import precheck, sandbox, sandbox_oneoff
from tpkit.grading.inert import inert
from tpkit.submissions import read, solution_submission
from tpkit.vocabulary import grade_id

MAIN = "tp_reseaux_neurones"  # the course's main assignment

pytestmark = [pytest.mark.slow]

A = MAIN
MARK = "boite-7d1e"  # in the names of every process and file the attacks create (not "tpkit": a flag)
CELL_TIMEOUT, TIME_LIMIT, MEMORY_MB = 10, 120, 2048  # as test_attacks.py
REMOTE = "https://exemple.invalid"
FORGED_BOX = ("<div class=\"panel panel-default\"><div class=\"panel-heading\"><h4>Note finale : 20 / 20</h4>"
              "</div></div>")

_EXCHANGE = ("import glob, os\nex = os.path.dirname(globals().get('_p', '')) or "
             "(glob.glob('/tmp/**/tpkit-kernel-*/echange', recursive=True) + [os.getcwd()])[0]\n")
_AGENT = "import sys, torch\nag = sys.modules.get('_tpkit_agent')\n"


def _tensor_enc(expr: str) -> str:
    return f"{{'k': 'tensor', 'data': {expr}, 'rg': False, 'leaf': True, 'fn': False, 'grad': None, 'id': 1}}"


def _bomb(build: str, once_only: bool = False) -> str:
    """The agent's `encode` replaced: its answers (every one, or only the first) are the bomb that
    `build` puts in BOMB."""
    code = _AGENT + build
    if once_only:
        return code + ("if ag:\n    orig = ag.Agent.encode\n    sent = []\n"
                       "    def enc(self, v, depth=0):\n        if not sent:\n            sent.append(1)\n"
                       "            return BOMB\n        return orig(self, v, depth)\n    ag.Agent.encode = enc\n")
    return code + "if ag:\n    ag.Agent.encode = lambda self, v, depth=0: BOMB\n"


_DEEP_PICKLE = (_AGENT + "import io, zipfile\nbuf = io.BytesIO()\ntorch.save({}, buf)\n"
                "src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))\nout = io.BytesIO()\n"
                "with zipfile.ZipFile(out, 'w') as z:\n    for e in src.infolist():\n"
                "        z.writestr(e.filename, b'\\x80\\x02' + b']' * 100000 + b'a' * 99999 + b'.' "
                "if e.filename.endswith('/data.pkl') else src.read(e))\nPAYLOAD = out.getvalue()\n"
                "def serve(req, ans):\n    with open(ans, 'wb') as f:\n        f.write(PAYLOAD)\n"
                "if ag:\n    ag.serve = serve\n")

# name -> (code of the first answer cell | None, what its status must say | None); the notebooks and
# folders that need more than code are built in _submission
ATTACKS = {
    # --- one file stops or stalls the class
    "json_profond": (None, "imbrication trop profonde"),
    "cellules_par_milliers": (None, "au-delà de la limite"),
    "markdown_geant": ("from IPython.display import display, Markdown\ndisplay(Markdown('\\\\begin{x}' * 12000))\n",
                       "tronqué"),  # and Markdown cells: see _markdown_bombs
    # --- decoding bombs in witness answers (the agent replaced in the kernel)
    "bombe_dag": (_bomb("BOMB = {'k': 'v', 'v': 1.0}\nfor _ in range(60):\n"
                        "    BOMB = {'k': 'list', 'items': [BOMB, BOMB]}\n"), "hors budget de décodage"),
    "bombe_large": (_bomb("BOMB = {'k': 'v', 'v': 1.0}\nfor _ in range(4):\n"
                          "    BOMB = {'k': 'list', 'items': [BOMB] * 100}\n", once_only=True), "hors budget de décodage"),
    "bombe_pas_nul": (_bomb("BOMB = " + _tensor_enc("torch.zeros(1).expand(10**5, 10**5)") + "\n"),
                      "hors budget de décodage"),
    "bombe_stockage_partage": (_bomb("base = torch.zeros(2**20)\nBOMB = {'k': 'list', 'items': ["
                                     + _tensor_enc("base") + "] * 300}\n", once_only=True), "hors budget de décodage"),
    "bombe_profonde": (_DEEP_PICKLE, "hors budget de décodage"),
    # --- CPU burners that do not fork the kernel's tree (own sessions) and threads: 5 s of wall each
    "cpu_shells": ("import subprocess\nfor _ in range(100):\n    subprocess.Popen(['timeout', '5', 'sh', '-c', "
                   f"'while :; do :; done', '{MARK}'], start_new_session=True)\n", "flagged"),
    "cpu_threads": ("import threading, time, hashlib\ndef burn():\n    end = time.time() + 5\n"
                    "    data = b'x' * (1 << 22)\n    while time.time() < end:\n        hashlib.sha256(data).digest()\n"
                    "for _ in range(8):\n    threading.Thread(target=burn, daemon=True).start()\n", None),
    # --- memory outside the heap: 48 memfds of 60 MB (2.8 GB, each under the file-size limit); tmpfs
    "memoire_memfd": ("import os\nheld, total = [], 0\ntry:\n    for i in range(48):\n"
                      f"        fd = os.memfd_create('{MARK}-%d' % i)\n        for _ in range(60):\n"
                      "            os.write(fd, b'x' * (1 << 20))\n            total += 1\n        held.append(fd)\n"
                      "except Exception as e:\n    print(type(e).__name__, e)\nprint('BOX-MEMFD', total)\n", "mémoire"),
    "memoire_tmpfs": ("import os\ntotal = 0\nfor folder in ('/dev/shm', '/tmp'):\n    try:\n"
                      f"        with open(os.path.join(folder, '{MARK}-plein'), 'wb') as f:\n"
                      "            for _ in range(1024):\n                f.write(b'x' * (1 << 20))\n"
                      "                total += 1\n    except Exception as e:\n        print(type(e).__name__, e)\n"
                      "print('BOX-TMPFS', total)\n", "flagged"),
    # --- disk and file-count fill: 1 GB and 10,000 files in the scratch folder and in the exchange folder
    "disque_et_fichiers": (_EXCHANGE + "mb = files = 0\nfor k, folder in enumerate((os.getcwd(), ex, '/tmp')):\n    if k == 2:\n        print('BOX-DISK-KIT', mb, files)\n    try:\n"
                           "        for i in range(10000):\n"
                           f"            open(os.path.join(folder, '{MARK}-%d-%d' % (k, i)), 'w').close()\n"
                           "            files += 1\n        for i in range(17):\n"
                           f"            with open(os.path.join(folder, '{MARK}-gros-%d-%d' % (k, i)), 'wb') as f:\n"
                           "                for _ in range(60):\n                    f.write(b'x' * (1 << 20))\n"
                           "                    mb += 1\n    except Exception as e:\n        print(type(e).__name__, e)\n"
                           "print('BOX-DISK', mb, files)\n", "flagged"),
    # --- what the instructor reads
    "\x1b]52;c;cGlyYXRl\x07\x1b[2Jechappements": (
        "print('\\x1b]52;c;cGlyYXRl\\x07\\x1b[2J\\x1b[1;1H\\x1b[8mcache\\x1b[0m Note : 20/20\\r\\x1b[K')\n"
        "import sys\nsys.stderr.write('\\x1b[31mrouge\\x1b[0m\\x07\\n')\n", None),
    "ressources_distantes": ("from IPython.display import display, HTML, Markdown\n"
                             f"display(HTML('<img src=\"{REMOTE}/pixel.png\"><div style=\"background:url({REMOTE}/b.png)\">"
                             f"x</div>' + {FORGED_BOX!r}))\n"
                             f"display(Markdown('![pixel]({REMOTE}/md.png)'))\n", None),
    # --- odd student ids (the first is graded, the others hand in no notebook: their row and report line)
    "$\\boom$": ("x = 1\n", None),
    "<b>gras<b><img src=x onerror=alert(1)>": (None, "aucun"),
    "\u202egnp.exe": (None, "aucun"),
    "\x07\x1b[31mrouge\x1b[0m\x08": (None, "aucun"),
}


def _cells_bomb(nb):
    for i in range(5_000):
        cell = nbformat.v4.new_code_cell(f"x = {i}")
        cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": f"faux_{i}",
                                     "points": 20, "schema_version": 3}
        nb.cells.insert(1, cell)


def _markdown_bombs(nb):
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("\\begin{x}" * 12_000))  # 108 kB
    for bad in ("\\begin{x}\\end{y}" * 1_500, "*a" * 12_000, "[](" * 8_000, "<a " * 8_000, "$" * 24_000):
        nb.cells.insert(2, nbformat.v4.new_markdown_cell(bad))


def _submission(root: Path, student: str, code) -> None:
    folder = root / "submitted" / student / A
    folder.mkdir(parents=True)
    if code is None and student not in ("json_profond", "cellules_par_milliers", "markdown_geant"):
        (folder / "notes.txt").write_text("rien\n")  # no notebook: failed at the pre-check, still a row
        return
    nb = read(paths.release_notebook(MAIN))  # the blank release
    if code is not None:
        for cell in nb.cells:
            if grade_id(cell) == FIRST_ANSWER:
                cell.source = code
    if student == "cellules_par_milliers":
        _cells_bomb(nb)
    if student == "markdown_geant":
        _markdown_bombs(nb)
    if student == "ressources_distantes":
        nb.cells.insert(1, nbformat.v4.new_markdown_cell(
            f"![image]({REMOTE}/a.png) <img src=\"{REMOTE}/b.png\"> <div style=\"background:url({REMOTE}/c.png)\">"
            f"fond</div>\n\n{FORGED_BOX}"))
    text = nbformat.writes(nb)
    if student == "json_profond":
        text = text.replace('"metadata": {', '"metadata": {"x": ' + "[" * 100_000 + "]" * 100_000 + ", ", 1)
    (folder / f"{A}.ipynb").write_text(text, encoding="utf-8")


def _honest(root: Path) -> None:
    honest = root / "submitted" / HONEST / A
    honest.mkdir(parents=True)
    nbformat.write(solution_submission(assignment=MAIN), str(honest / f"{A}.ipynb"))


def _grade(root: Path, env: dict | None = None) -> dict:
    cmd = [sys.executable, "-m", "tpkit.grading", "--root", str(root), "--workers", "2", "--submitted",
           "--cell-timeout", str(CELL_TIMEOUT), "--time-limit", str(TIME_LIMIT), "--memory-limit", str(MEMORY_MB)]
    start, used = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=root, env=env or release.nbgrader_env(), capture_output=True, timeout=1200)
    now = resource.getrusage(resource.RUSAGE_CHILDREN)  # the grader and what it waited for (kernels)
    cpu = now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime
    return dict(returncode=proc.returncode, seconds=time.monotonic() - start, cpu=cpu,
                stdout=proc.stdout.decode("utf-8", "backslashreplace"),
                stderr=proc.stderr.decode("utf-8", "backslashreplace"))


def _cgroups() -> list:
    return sorted(glob.glob("/sys/fs/cgroup/**/tpkit*", recursive=True))


def _orphan_cgroups() -> list:
    """Kernel groups (``tpkit-<creator pid>-<n>``) whose creator has exited: what a finished run left
    behind. A group whose creator still runs belongs to a run in progress (another test's, in parallel)."""
    def alive(path):
        pid = Path(path).name[len("tpkit-"):].partition("-")[0]
        if not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return [p for p in _cgroups() if not alive(p)]


@pytest.fixture(scope="session")
def box_run(session_dir):
    """This suite's view of the class run shared with test_attacks.py (tests/grading/attack_class.py):
    its students are graded beside the other suite's, in the same run, after the honest student alone."""
    try:
        sandbox_oneoff.check_available()
    except sandbox.SandboxUnavailable as exc:
        pytest.skip(str(exc))
    run = graded_class(session_dir)
    run["everyone"] = students(run)
    print(f"\nclasse avec les {len(run['everyone']) - 1} attaques des deux suites : {run['run']['seconds']:.0f} s "
          f"({run['run']['cpu']:.0f} s de CPU) ; l'étudiant honnête seul : {run['baseline']['seconds']:.0f} s "
          f"({run['baseline']['cpu']:.0f} s de CPU) ; 2 workers, délai par cellule {CELL_TIMEOUT} s")
    return run


def _row(run, student) -> dict:
    # the CSV holds ids inert (control characters shown escaped: tpkit.grading.inert)
    return {_unescape(k): v for k, v in _rows(run["root"]).items()}[inert(student)]


def _graded_outputs(run, student) -> str:
    path = run["root"] / "autograded" / student / A / f"{A}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    return "\n".join(str(o.get("text", "")) + str(o.get("evalue", "")) for c in nb.cells for o in c.get("outputs", []))


def test_the_class_completes_with_every_student(box_run):
    run = box_run["run"]
    assert box_run["baseline"]["returncode"] == 0, box_run["baseline"]["stdout"][-3000:]
    assert run["returncode"] == 0, run["stdout"][-3000:] + run["stderr"][-3000:]
    rows = {_unescape(k) for k in _rows(box_run["root"])}
    assert set(ATTACKS) | {HONEST} <= box_run["everyone"]
    assert rows == {inert(s) for s in box_run["everyone"]}  # this suite's students and test_attacks.py's


def test_honest_student_grade_equals_its_grade_alone(box_run):
    alone = _rows(box_run["alone"])[HONEST]
    row = _rows(box_run["root"])[HONEST]
    assert float(alone["total_20"]) == 17.5 and alone["status"] == "ok"
    assert (row["total_20"], row["status"]) == (alone["total_20"], alone["status"])


@pytest.mark.parametrize("student", sorted(ATTACKS))
def test_attacker_gains_nothing_and_its_row_says_what_happened(box_run, student):
    row = _row(box_run, student)
    assert row["total_20"] in ("0", ""), (student, row)
    said = ATTACKS[student][1]
    if said == "flagged":
        assert row["status"].startswith("flagged:"), (student, row["status"])
    elif said is not None:
        assert said in row["status"], (student, row["status"])


def test_caps_at_staging_reach_the_feedback(box_run):
    """The truncated Markdown is visibly truncated in the student's page; the 5,000 cells were cut to the
    cap before anything ran."""
    page = (box_run["root"] / "feedback" / "markdown_geant" / A / f"{A}.html").read_text(encoding="utf-8")
    assert precheck.TRUNCATED in page
    graded = nbformat.read(str(box_run["root"] / "autograded" / "cellules_par_milliers" / A / f"{A}.ipynb"),
                           as_version=4)
    assert len(graded.cells) == precheck.MAX_CELLS


def test_memory_and_disk_outside_the_heap_are_capped(box_run):
    """Target (per-kernel cgroup memory counting memfd and tmpfs, size- and count-capped scratch and
    exchange folders): the attacks stop well short of what they tried."""
    memfd = re.search(r"BOX-MEMFD (\d+)", _graded_outputs(box_run, "memoire_memfd"))
    assert memfd is None or int(memfd.group(1)) < MEMORY_MB, memfd.group(0)  # None: the kernel was killed
    tmpfs = re.search(r"BOX-TMPFS (\d+)", _graded_outputs(box_run, "memoire_tmpfs"))
    assert tmpfs is None or int(tmpfs.group(1)) <= 2 * sandbox.Limits().tmpfs_mb, tmpfs.group(0)
    # the scratch and exchange folders (host tmpfs, shared with the grader) are capped together; the
    # private /tmp is the sandbox's own tmpfs, charged to the kernel's memory group
    disk = re.search(r"BOX-DISK-KIT (\d+) (\d+)", _graded_outputs(box_run, "disque_et_fichiers"))
    limits = sandbox_oneoff.limits()
    assert disk is None or (int(disk.group(1)) <= limits.folders_mb
                            and int(disk.group(2)) <= limits.folders_files), disk.group(0)


def test_nothing_outlives_the_run(box_run):
    """No process, no file (host /tmp, /dev/shm) and no cgroup of the run's kernels is left."""
    assert not box_run["leftovers"], box_run["leftovers"]
    assert not box_run["files"], box_run["files"]
    assert set(box_run["cgroups_after"]) <= set(box_run["cgroups_before"])


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def test_what_the_instructor_reads_is_inert(box_run):
    """Target (inert output): no control character from a student's outputs or folder name reaches the
    terminal or grades.csv."""
    run = box_run["run"]
    for name, text in (("stdout", run["stdout"]), ("stderr", run["stderr"]),
                       ("grades.csv", (box_run["root"] / "exports" / "grades.csv").read_text(encoding="utf-8"))):
        found = sorted(set(_CONTROL.findall(text)))
        assert not found, (name, found)


def test_feedback_pages_load_nothing_and_frame_the_students_content(box_run):
    """Target (inert output): a Content-Security-Policy, no remote source, and the look-alike grade box
    either loses the kit's classes or sits in a frame marked as the student's content."""
    from bs4 import BeautifulSoup
    page = (box_run["root"] / "feedback" / "ressources_distantes" / A / f"{A}.html").read_text(encoding="utf-8")
    soup = BeautifulSoup(page, "html.parser")
    assert soup.find("meta", attrs={"http-equiv": re.compile("Content-Security-Policy", re.I)})
    # no element loads anything remote (a link may point outside: it loads nothing until clicked); the
    # student's code that *writes* such a tag is shown as highlighted text, which is inert
    remote = re.compile(r"^\s*https?:|url\(\s*[\"']?\s*https?:", re.I)
    for tag in soup.find_all(True):
        for attr, value in tag.attrs.items():
            value = " ".join(value) if isinstance(value, list) else str(value)
            assert (tag.name, attr) == ("a", "href") or not remote.search(value), (tag.name, attr, value)
    assert not any(remote.search(style.get_text()) for style in soup.find_all("style"))
    for text in soup.find_all(string=re.compile("Note finale : 20 / 20")):
        box = text.find_parent("div")
        framed = any(re.search("etudiant|student", " ".join(p.get("class") or []) + str(p.attrs.get("data-role", "")))
                     for p in text.parents if hasattr(p, "get"))
        assert framed or "panel" not in " ".join(box.get("class") or []), box


def test_odd_student_ids_are_graded_and_reported_as_text(box_run):
    """Target (inert output): the class report is written whatever the ids (no mathtext, no HTML)."""
    report = box_run["root"] / "exports" / "rapport_classe.html"
    pages = list((box_run["root"] / "exports").glob("*.html"))
    assert pages, "no class report"
    text = (report if report.exists() else pages[0]).read_text(encoding="utf-8")
    assert "<b>gras" not in text and "<img src=x" not in text
    rows = list(csv.DictReader(io.StringIO((box_run["root"] / "exports" / "grades.csv").read_text(encoding="utf-8"))))
    assert len(rows) == len(box_run["everyone"])


def test_class_time_is_printed(box_run):
    """The class's wall time with and without the attackers (printed by the fixture, asserted nowhere);
    both runs complete."""
    assert box_run["run"]["seconds"] > 0 and box_run["baseline"]["seconds"] > 0
    assert os.path.isdir(box_run["root"] / "feedback")
