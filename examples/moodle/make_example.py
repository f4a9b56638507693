"""Build an example Moodle download (zip) and grading worksheet (CSV) from any notebooks.

    .venv/bin/python examples/moodle/make_example.py [NOTEBOOK.ipynb ...] [--out DIR]

The notebooks are handed out in turn to a small fictitious class whose names exercise the import
(accents, hyphens, apostrophes, spaces); one student renames the notebook, one adds a stray file.
Without arguments the release notebook is used if it exists, else a tiny placeholder notebook.
Writes ``DIR/moodle_submissions.zip`` (folders layout), ``DIR/moodle_submissions_flat.zip`` and
``DIR/moodle_worksheet.csv`` (English headers); DIR defaults to this folder. Deterministic: the same
input gives byte-identical files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tpkit import assignments, paths  # noqa: E402
from tpkit.grading.lms.moodle.fixtures import minimal_notebook, write_moodle_zip, write_worksheet  # noqa: E402

ASSIGNMENT = assignments.default()  # the course's first, as the grading command's default

CLASS = [  # (full name, participant id)
    ("Élodie Lefèvre", 1234567),
    ("Jean-Noël D'Arcy", 1234568),
    ("Zoë van der Berg", 1234569),
    ("Mathéo Núñez", 1234570),
    ("Anaïs Côté-Laurent", 1234571),
    ("Léa Dubois", 1234572),
]


def make_example(notebooks: Sequence[bytes], out_dir: Path) -> dict[str, Path]:
    """Write the example zips and worksheet under out_dir from notebook contents (bytes)."""
    if not notebooks:
        raise ValueError("at least one notebook is needed")
    out_dir = Path(out_dir)
    submissions = {}
    for k, (name, pid) in enumerate(CLASS):
        nb = notebooks[k % len(notebooks)]
        if k == 1:  # renamed by the student: imported under the expected name, reported
            files = {f"{ASSIGNMENT} (1).ipynb": nb}
        elif k == 2:  # a stray file next to the notebook: ignored, reported
            files = {paths.notebook_name(ASSIGNMENT): nb, "notes.txt": "brouillon\n".encode()}
        else:
            files = {paths.notebook_name(ASSIGNMENT): nb}
        submissions[name] = (pid, files)
    return {
        "zip": write_moodle_zip(out_dir / "moodle_submissions.zip", submissions, layout="folders"),
        "zip_flat": write_moodle_zip(out_dir / "moodle_submissions_flat.zip", submissions, layout="flat"),
        "worksheet": write_worksheet(out_dir / "moodle_worksheet.csv", submissions, language="en"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks handed out to the class")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    if args.notebooks:
        contents = [p.read_bytes() for p in args.notebooks]
    elif paths.release_notebook(ASSIGNMENT).is_file():
        contents = [paths.release_notebook(ASSIGNMENT).read_bytes()]
    else:
        contents = [minimal_notebook()]
    for kind, path in make_example(contents, args.out).items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
