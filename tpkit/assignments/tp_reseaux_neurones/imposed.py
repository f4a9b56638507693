"""Values tp_reseaux_neurones' statement imposes (step, niter, nb_hidden, mb, seeds), read from the *given* lines of
the source notebook: the lines of its answer cells outside `### BEGIN SOLUTION` regions, which the
student receives as they are (`step = 1`, `niter = 200`, `np.random.seed(1)`...).

The source notebook is the one place these values live: change `niter = 200` there and the hidden
checks follow. `TPKIT_SOURCE_NOTEBOOK` (environment) names another source notebook, which
`tpkit.release` uses to grade a source before releasing it.
"""
from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

from tpkit import paths
from tpkit.vocabulary import grade_id, split_solution

_ASSIGN = re.compile(r"^(step|niter|nb_hidden|mb)\s*=\s*([0-9.eE+-]+)\s*(#.*)?$")
_SEED = re.compile(r"^np\.random\.seed\((\d+)\)")

#: answer cell -> the imposed names the checks of its question need
REQUIRED = {"r3_descente": ("step", "niter", "seed"), "r3_sgd": ("step", "niter", "seed"),
            "r4_mlp_manuel": ("nb_hidden", "step", "niter", "seed"),
            "r4_mlp_apprentissage": ("step", "niter", "seed"), "r5_minibatch": ("step", "mb", "seed")}


def source_notebook() -> Path:
    return Path(os.environ.get("TPKIT_SOURCE_NOTEBOOK") or paths.source_notebook("tp_reseaux_neurones"))


def given_lines(source: str) -> list[str]:
    """The lines of a cell outside its solution regions."""
    return [line.strip() for line in split_solution(source)[0]]


def parse(cells: dict) -> dict:
    """{grade_id: {name: value}} from {grade_id: source}; a required value missing is an error."""
    values = {}
    for gid, names in REQUIRED.items():
        found = {}
        for line in given_lines(cells.get(gid, "")):
            m = _ASSIGN.match(line)
            if m:
                number = float(m.group(2))
                found[m.group(1)] = int(number) if number.is_integer() else number
            m = _SEED.match(line)
            if m:
                found["seed"] = int(m.group(1))
        missing = [n for n in names if n not in found]
        if missing:
            raise ValueError(f"cellule {gid} du notebook source : ligne donnée introuvable pour "
                             f"{', '.join(missing)}")
        values[gid] = found
    return values


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> dict:
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = {}
    for cell in nb["cells"]:
        gid = grade_id(cell)
        if gid and cell.get("cell_type") == "code":
            src = cell["source"]
            cells[gid] = "".join(src) if isinstance(src, list) else src
    return parse(cells)


def values() -> dict:
    path = source_notebook()
    return _load(str(path), path.stat().st_mtime)


def get(cell: str, name: str):
    """The value imposed by `cell`'s given line for `name` (e.g. get("r3_descente", "niter"))."""
    return values()[cell][name]
