"""Pre-check of a submission's cells before it is executed: checked against the gradebook (the
reference of what must be there) and the release notebook (where it goes, and its student-visible text),
and repaired the way nbgrader intends.

nbgrader trusts the structure of what it grades: a copy-pasted answer cell (duplicate ``grade_id``) stops
the whole ``autograde`` run (nbgrader #1083), a re-labelled cell fails that student, a graded cell whose
``grade`` flag was switched off is left "needs manual grading". Here, repaired and reported: duplicated
graded cells (the last copy is graded, earlier copies become ordinary cells), re-labelled cells (the id
is restored when the cell's place and role say which one it was, otherwise it becomes an ordinary cell),
changed nbgrader metadata (restored from the gradebook), deleted test / read-only / manually graded cells
(re-inserted from the release at their place; ``OverwriteCells`` then restores their hidden tests),
edited test or read-only cells (reported; ``OverwriteCells`` restores them), hidden-test markers typed
outside a test cell (neutralised). A deleted answer cell is reported only. :func:`cap_cells` then bounds
what the kernel runs and the feedback page renders.

Every finding is a short French sentence: it ends up in the CSV status and in the student's feedback.
The file level (which notebook, what else of the folder is staged) is :mod:`tpkit.grading.staging`. The
same repairs are available to plain ``nbgrader autograde`` as the preprocessor
:class:`tpkit.grading.preprocessors.RepairGradedCells` (see ``nbgrader_config.py``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional

from nbformat.notebooknode import NotebookNode

from tpkit.grading.expected import NBGRADER_FLAGS, Expected, role_of, same_text
from tpkit.vocabulary import BEGIN_HIDDEN, END_HIDDEN, grade_id

#: Dropped entries named in the finding.
MAX_LISTED = 10
#: Cells of a graded notebook (the release has 85). Beyond MAX_CELLS, the cells with a grade id of the
#: assignment are all kept and the others, in notebook order, up to the cap (the rest is never executed);
#: beyond submission_files.MAX_CELLS_READ the file is not read.
MAX_CELLS = 1_000
#: Characters of one Markdown cell and of all of them: the feedback page renders them with mistune, whose
#: math patterns are quadratic (108 kB of repeated `\begin{x}`: +44 s of rendering). The release's longest
#: Markdown cell has 1,608 characters. A longer cell is cut and ends with TRUNCATED.
MAX_MARKDOWN_CHARS = 10_000
MAX_MARKDOWN_TOTAL = 200_000
TRUNCATED = "[texte tronqué]"
#: Findings listed one by one for cells that are not the assignment's (fake graded cells, copies...); the
#: others are counted in one more finding. Findings about the assignment's own cells are all listed.
MAX_FOREIGN_FINDINGS = 10


@dataclass
class Finding:
    kind: str  # renamed | duplicated | relabelled | unknown_cell | metadata | edited | deleted | ...
    message: str  # French, short
    grade_id: Optional[str] = None



def _strip_nbgrader(cell) -> None:
    cell.metadata.pop("nbgrader", None)
    for key in ("deletable", "editable"):
        cell.metadata.pop(key, None)


def repair_cells(nb: NotebookNode, expected: Expected) -> list:
    """Check the graded cells of ``nb`` against ``expected`` and repair them in place; return the
    findings (see the module docstring)."""
    findings: list = []

    # 1. duplicates: the last copy is graded
    seen: dict = {}
    for index, cell in enumerate(nb.cells):
        gid = grade_id(cell)
        if gid is not None:
            seen.setdefault(gid, []).append(index)
    for gid, indices in seen.items():
        if len(indices) > 1:
            for index in indices[:-1]:
                _strip_nbgrader(nb.cells[index])
            findings.append(Finding("duplicated", f"cellule {gid} présente {len(indices)} fois "
                                                  "(seule la dernière copie est notée)", gid))

    # 2. unknown or missing ids: re-label when place and role tell which cell it was. The known cells
    #    around each cell are kept as a running maximum (before it) and a suffix minimum (after it):
    #    linear in the number of cells (5,000 fake graded cells cost 33 s when each looked at all others)
    position = {gid: k for k, gid in enumerate(expected.order)}
    ids = [grade_id(c) for c in nb.cells]
    present = {g for g in ids if g in expected.cells}
    missing = [g for g in expected.order if g not in present]
    first_after = [len(expected.order)] * (len(ids) + 1)  # lowest position of a known cell from index on
    for index in range(len(ids) - 1, -1, -1):
        first_after[index] = min(first_after[index + 1], position.get(ids[index], len(expected.order)))
    low = -1  # highest position of a known cell before index
    for index, cell in enumerate(nb.cells):
        md = cell.metadata.get("nbgrader")
        if md is None:
            continue
        gid = md.get("grade_id") if isinstance(md, dict) else None
        if gid in expected.cells:
            low = max(low, position[gid])
            continue
        if not isinstance(md, dict) or not any(md.get(k) for k in NBGRADER_FLAGS):
            _strip_nbgrader(cell)  # empty / meaningless nbgrader metadata
            continue
        high = first_after[index + 1]
        candidates = [g for g in missing if low < position[g] < high
                      and expected.cells[g].role == role_of(cell)]
        if len(candidates) == 1:
            new = candidates[0]
            md["grade_id"] = new
            missing.remove(new)
            low = max(low, position[new])
            findings.append(Finding("relabelled", f"cellule {new} ré-étiquetée « {gid} » "
                                                  "(identifiant rétabli)", new))
        else:
            _strip_nbgrader(cell)
            findings.append(Finding("unknown_cell", f"cellule notée inconnue « {gid} » "
                                                    "(traitée comme une cellule ordinaire)", gid))

    # 3. metadata of known cells, and edits of locked cells
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid not in expected.cells:
            continue
        exp = expected.cells[gid]
        md = cell.metadata.nbgrader
        changed = [k for k in NBGRADER_FLAGS if bool(md.get(k)) != getattr(exp, k)]
        if exp.points is not None and (exp.grade or exp.task):
            try:
                if float(md.get("points", -1)) != exp.points:
                    changed.append("points")
            except (TypeError, ValueError):
                changed.append("points")
        if cell.cell_type != exp.cell_type:
            changed.append("type")
        if md.get("schema_version") != 3:
            changed.append("version")
        if changed:
            for k in NBGRADER_FLAGS:
                md[k] = getattr(exp, k)
            if exp.points is not None and (exp.grade or exp.task):
                md["points"] = exp.points
            else:
                md.pop("points", None)
            md["schema_version"] = 3
            findings.append(Finding("metadata", f"métadonnées de la cellule {gid} modifiées "
                                                f"({', '.join(changed)}) : rétablies", gid))
        if exp.locked and not exp.solution and exp.release_source is not None \
                and not same_text(cell.source, exp.release_source):
            what = "de test" if exp.grade else "verrouillée"
            findings.append(Finding("edited", f"cellule {what} {gid} modifiée : version d'origine "
                                              "rétablie", gid))

    # 4. deleted cells: locked and graded ones come back from the release, at their place
    for gid in missing:
        exp = expected.cells[gid]
        if exp.role == "answer":
            findings.append(Finding("deleted", f"cellule de réponse {gid} supprimée", gid))
            continue
        if exp.release_cell is None:
            findings.append(Finding("deleted", f"cellule {gid} supprimée", gid))
            continue
        cell = copy.deepcopy(exp.release_cell)
        cell.pop("id", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        anchor = max((k for k, c in enumerate(nb.cells)
                      if grade_id(c) in position and position[grade_id(c)] < position[gid]),
                     default=-1)
        nb.cells.insert(anchor + 1, cell)
        what = {"test": "de test ", "manual": "de réponse ", "readonly": "verrouillée ",
                "task": "de tâche "}.get(exp.role, "")
        findings.append(Finding("deleted", f"cellule {what}{gid} supprimée : rétablie", gid))

    # 5. hidden-test markers typed outside a test cell: neutralised (nbgrader's feedback would stop on
    #    them, and they must never be mistaken for the instructor's hidden tests)
    for cell in nb.cells:
        if role_of(cell) == "test" or not any(m in cell.get("source", "") for m in (BEGIN_HIDDEN, END_HIDDEN)):
            continue
        cell.source = cell.source.replace(BEGIN_HIDDEN, "(marqueur retiré)").replace(
            END_HIDDEN, "(marqueur retiré)")
        findings.append(Finding("dropped", "marqueurs de tests cachés retirés d'une cellule "
                                           f"{grade_id(cell) or 'sans identifiant'}", grade_id(cell)))

    _fix_cell_ids(nb)
    return _few_foreign(findings, expected)


def _few_foreign(findings: list, expected: Expected) -> list:
    """The findings, those about cells that are not the assignment's beyond :data:`MAX_FOREIGN_FINDINGS`
    counted in one finding (5,000 fake graded cells make one line of status, not 5,000)."""
    kept, foreign, more = [], 0, 0
    for f in findings:
        if f.grade_id in expected.cells:
            kept.append(f)
        elif foreign < MAX_FOREIGN_FINDINGS:
            kept.append(f)
            foreign += 1
        else:
            more += 1
    if more:
        kept.append(Finding("unknown_cell", f"… et {more} autre(s) remarque(s) sur des cellules qui ne sont pas "
                                            "celles du TP"))
    return kept


def cap_cells(nb: NotebookNode, expected: Expected) -> list:
    """Keep at most :data:`MAX_CELLS` cells (every cell of the assignment first) and cut Markdown cells
    to :data:`MAX_MARKDOWN_CHARS` characters, :data:`MAX_MARKDOWN_TOTAL` in all; return the findings. Run
    after :func:`repair_cells` (no duplicated grade id left)."""
    findings = []
    if len(nb.cells) > MAX_CELLS:
        room = MAX_CELLS - sum(grade_id(c) in expected.cells for c in nb.cells)
        kept = []
        for cell in nb.cells:
            if grade_id(cell) in expected.cells or room > 0:
                room -= grade_id(cell) not in expected.cells
                kept.append(cell)
        findings.append(Finding("dropped", f"{len(nb.cells) - len(kept)} cellule(s) au-delà de la limite de "
                                           f"{MAX_CELLS} cellules retirée(s) (non exécutées)"))
        nb.cells = kept
    budget, cut = MAX_MARKDOWN_TOTAL, []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        room = max(0, min(MAX_MARKDOWN_CHARS, budget))
        if len(cell.source) > room:
            cut.append(f"n°{index + 1} ({len(cell.source)} caractères)")
            cell.source = cell.source[:room] + f"\n\n{TRUNCATED}"
        budget -= len(cell.source)
    if cut:
        shown = ", ".join(cut[:MAX_LISTED]) + ("…" if len(cut) > MAX_LISTED else "")
        findings.append(Finding("truncated", f"texte Markdown trop long tronqué (limite {MAX_MARKDOWN_CHARS} "
                                             f"caractères par cellule, {MAX_MARKDOWN_TOTAL} en tout) : "
                                             f"cellule(s) {shown}"))
    return findings


def _fix_cell_ids(nb) -> None:
    """Copy-pasted cells share nbformat cell ids; give duplicates a unique one (deterministically)."""
    if nb.get("nbformat", 4) < 4 or nb.get("nbformat_minor", 0) < 5:
        return
    used, start = set(), {}  # start: per base, where the search for a free suffix resumes (linear in all)
    for k, cell in enumerate(nb.cells):
        cid = cell.get("id")
        if not cid or cid in used:
            base = cid or "cell"
            n = max(k, start.get(base, 0))
            while f"{base}-{n}" in used:
                n += 1
            start[base] = n + 1
            cid = f"{base}-{n}"
            cell["id"] = cid
        used.add(cid)

