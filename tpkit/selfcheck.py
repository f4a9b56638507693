"""The student's self-check: the last cells of the notebook, `python -m tpkit.selfcheck` (then `make release`).

The given setup cell defines ``_verification``, a context manager in which the visible part of each test
cell runs (``with _verification("Q2.3 pred"):``): it notes the outcome and lets any error through, so
grading is unchanged (no IPython hook: code reaching for the interpreter is flagged). The self-check cell
prints a table ✓/✗ per question (number, title, points, visible message) from those notes: nothing is
re-run, no hidden check is involved, and questions not yet run are shown as such (partly done notebook).
The question list is written into the cell from :mod:`tpkit.labels`, so it follows the notebook; the
test suite checks it is in sync.
"""
from __future__ import annotations

import sys

import nbformat

from tpkit import labels, paths

MD_ID, CODE_ID = "autoverif-md", "autoverif-code"
TITLE_PREFIX = "# Vérification "


def guard_line(label: str) -> str:
    return f'with _verification("{label}"):'

_MD = """## Auto-vérification

Exécutez la cellule ci-dessous (elle l'est aussi par *Kernel → Restart & Run All*) : elle résume le résultat
des cellules de **vérification visibles** déjà exécutées, question par question. ✓ : la vérification
visible passe ; ✗ : elle échoue (message) ; · : pas encore exécutée ; ✎ : réponse écrite, corrigée par
l'enseignant. Les vérifications cachées de la correction ne sont pas lancées ici : un ✓ n'assure pas les
points, un ✗ les fait perdre."""

_CODE = '''# Auto-vérification (cellule fournie, ne pas modifier) : relit les résultats notés par la cellule
# d'initialisation, sans rien ré-exécuter.
from IPython.display import Markdown, display

_questions = [  # (numéro, titre, points, réponse écrite)
{rows}
]


def _tableau_verifications():
    lignes = ["| | Question | Points | Message |", "|---|---|---|---|"]
    reussies = 0
    for numero, titre, points, ecrite in _questions:
        cle = f"{{numero}} {{titre}}"
        if ecrite:
            marque, message = "✎", "réponse écrite, corrigée par l'enseignant"
        elif cle not in globals().get("_verifications", {{}}):
            marque, message = "·", "vérification pas encore exécutée"
        elif _verifications[cle] is None:
            marque, message = "✓", "vérification visible réussie"
            reussies += 1
        else:
            erreur = _verifications[cle]
            if isinstance(erreur, AssertionError):
                message = str(erreur) or "la vérification a échoué"
            elif isinstance(erreur, NameError):
                message = f"{{erreur}} : complétez et exécutez d'abord les cellules au-dessus"
            else:
                message = f"{{type(erreur).__name__}} : {{erreur}}"
            marque = "✗"
        message = message.replace("|", "\\\\|").replace("\\n", " ")
        lignes.append(f"| {{marque}} | **{{numero}}** {{titre}} | {{points:g}} | {{message}} |")
    auto = [q for q in _questions if not q[3]]
    lignes.append("")
    lignes.append(f"Vérifications visibles réussies : {{reussies}} / {{len(auto)}} questions notées automatiquement.")
    return "\\n".join(lignes)


display(Markdown(_tableau_verifications()))'''


def rows(nb) -> str:
    written = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
               if c.cell_type == "markdown" and c.get("metadata", {}).get("nbgrader", {}).get("grade")}
    found = labels.labels_of(nb)
    return "\n".join(f"    ({q.number!r}, {q.title!r}, {q.points:g}, {q.grade_id in written}),"
                      for q in sorted(found.values(), key=lambda q: q.order))


def code_source(nb) -> str:
    return _CODE.format(rows=rows(nb))


def cells(nb) -> list:
    md = nbformat.v4.new_markdown_cell(_MD)
    md.id = MD_ID
    code = nbformat.v4.new_code_cell(code_source(nb))
    code.id = CODE_ID
    code.metadata["nbgrader"] = {"grade": False, "grade_id": "autoverification", "locked": True,
                                 "schema_version": 3, "solution": False}
    return [md, code]


def main(path=paths.SOURCE_NOTEBOOK) -> int:
    nb = nbformat.read(str(path), as_version=4)
    nb.cells = [c for c in nb.cells if c.get("id") not in (MD_ID, CODE_ID)]
    nb.cells += cells(nb)
    nbformat.write(nb, str(path))
    print(f"self-check written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
