"""Class time with and without each class of attack of issue 22: ``python bench/attacks_bench.py``
(``make bench-attacks``).

The attacks are the adversarial suite's (tests/grading/test_attacks_box.py: one definition, imported
here). For each class of attack, a temporary copy of the course holds the honest student (the solution)
and that class's attackers; the real grading command grades them with the suite's settings; the bench
prints the class's wall and CPU time against the honest student graded alone, the honest student's
grade in both runs, and each attacker's grade and status. Run it on an idle machine: the times are what
the issue's closing note reports. No assertion (the suite asserts the outcomes).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "tests" / "grading")]

from conftest import generated_course  # noqa: E402  (the suite's helpers: one definition of each attack)
from test_attacks import HONEST, _rows, _unescape  # noqa: E402
from test_attacks_box import ATTACKS, _grade, _honest, _submission  # noqa: E402

from tpkit.grading.inert import inert  # noqa: E402

#: class of attack (as the issue lists them) -> its attackers in ATTACKS
CLASSES = {
    "imbrication JSON profonde": ["json_profond"],
    "milliers de cellules": ["cellules_par_milliers"],
    "Markdown géant et pathologique": ["markdown_geant"],
    "bombes de décodage (profonde, large, pas nul, stockage partagé, DAG)":
        ["bombe_profonde", "bombe_large", "bombe_pas_nul", "bombe_stockage_partage", "bombe_dag"],
    "CPU sans fork du noyau (shells exec'd, threads)": ["cpu_shells", "cpu_threads"],
    "mémoire hors du tas (memfd, /dev/shm, tmpfs)": ["memoire_memfd", "memoire_tmpfs"],
    "disque et nombre de fichiers": ["disque_et_fichiers"],
    "échappements de terminal (sorties, nom de dossier)": ["\x1b]52;c;cGlyYXRl\x07\x1b[2Jechappements"],
    "ressources distantes et fausse boîte de note": ["ressources_distantes"],
    "identifiants étranges (mathtext, HTML, RTL, contrôle)":
        ["$\\boom$", "<b>gras<b><img src=x onerror=alert(1)>", "\u202egnp.exe", "\x07\x1b[31mrouge\x1b[0m\x08"],
}
assert sorted(sum(CLASSES.values(), [])) == sorted(ATTACKS), "every attack of the suite in one class"


def _ids(root: Path) -> dict:
    """student id (inert, as the CSV holds it) -> its grades.csv row; {} when the run wrote none."""
    if not (root / "exports" / "grades.csv").exists():
        return {}
    return {_unescape(k): v for k, v in _rows(root).items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", nargs="*", help="only these classes (substring of their name)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-attaques-") as tmp:
        base = Path(tmp)
        alone = generated_course(base, base / "seul")
        _honest(alone)
        ref = _grade(alone)
        ref_grade = _ids(alone)[HONEST]
        print(f"load average {os.getloadavg()[0]:.1f}; étudiant honnête seul : {ref['seconds']:.1f} s "
              f"({ref['cpu']:.1f} s CPU), note {ref_grade['total_20']}", flush=True)
        for i, (label, students) in enumerate(CLASSES.items()):
            if args.classes and not any(c in label for c in args.classes):
                continue
            root = generated_course(base, base / f"classe{i}")
            _honest(root)
            for student in students:
                _submission(root, student, ATTACKS[student][0])
            run = _grade(root)
            rows = _ids(root)
            honest = rows.get(HONEST, {})
            print(f"\n## {label}\n  classe : {run['seconds']:.1f} s ({run['cpu']:.1f} s CPU), "
                  f"+{run['seconds'] - ref['seconds']:.1f} s sur l'honnête seul ; code de sortie {run['returncode']} ; "
                  f"note de l'honnête {honest.get('total_20', '?')} (seul : {ref_grade['total_20']})", flush=True)
            for student in students:
                row = rows.get(inert(student), {})
                print(f"  {inert(student)[:40]:40s} note {row.get('total_20', '—'):>5s}  "
                      f"{inert(row.get('status', 'pas de ligne'))[:240]}", flush=True)
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
