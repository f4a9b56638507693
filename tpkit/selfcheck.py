"""The student's visible checks and self-check table, in every assignment: `python -m tpkit.selfcheck
[--assignment A]` writes them into the source notebooks (then `python -m tpkit.release`).

**What a student sees.** Each test cell's visible part runs inside ``with _verification("Q2.3 pred"):``
(the given setup cell defines it). While a student works, a failing visible check does *not* raise: it
notes the verdict and shows its French message in a red box under the cell, so « Exécuter tout » goes on
to the last cell, whose table lists every question: ✓, ✗ with the message, or « non exécutée » with the
reason. When a check fails while one of the questions it builds on has failed above (each assignment's ``prerequisites``, :mod:`tpkit.assignments`),
its message starts with « corrigez d'abord Qx » (an earlier mistake must not be blamed on a correct cell).

**What the grader sees is unchanged.** Under nbgrader (``nbgrader validate`` / ``autograde`` set
``NBGRADER_EXECUTION``; every kernel the kit starts sets it too: :func:`tpkit.environment.kernel_variables`)
the same ``_verification`` lets the error through: a failing visible check still makes its test cell
score 0, and ``nbgrader validate`` still reports it. A student who sets that variable himself only turns
his own messages back into errors.

**Why answer cells still raise.** nbgrader's stub (``raise NotImplementedError("cellule à compléter…")``,
nbgrader_config.py) stays: a question not done must say so loudly, and the given code after a stub
(a print, a call of the student's function) would fail anyway on what is missing. An error in an answer
cell (a stub, or the student's own code) stops « Exécuter tout » there, as JupyterLab always does; the
student then runs the last cell by hand and its table says where the run stopped and on which error
(``sys.last_value``, set by IPython). No IPython hook is used: code reaching for the interpreter is
flagged at grading (:mod:`tpkit.grading.traces`).

The question list of the table is written from :mod:`tpkit.labels`, so it follows the notebook; the test
suite checks that both generated pieces are in sync.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from tpkit import assignments, labels, paths
from tpkit.vocabulary import grade_id

MD_ID, CODE_ID = "autoverif-md", "autoverif-code"
TITLE_PREFIX = "# Vérification "
SETUP_MARK = "# Vérifications visibles (cellules « Vérification ») et auto-vérification (dernière cellule)"
_OLD_SETUP_MARK = "# Auto-vérification (dernière cellule du notebook)"

def prerequisites() -> dict:
    """{assignment: {grade id: the graded questions its visible check builds on}}, as each assignment's
    package declares them (:attr:`tpkit.assignments.Assignment.prerequisites`)."""
    return {a.name: a.prerequisites for a in assignments.registry()}


def guard_line(label: str) -> str:
    return f'with _verification("{label}"):'


# The end of the given setup cell (French: the student reads it). `{prerequisites}` is filled per notebook.
_SETUP = '''# Vérifications visibles (cellules « Vérification ») et auto-vérification (dernière cellule)
# Pendant que vous travaillez, une vérification qui échoue affiche son message en rouge sans arrêter
# « Exécuter tout » : le notebook va jusqu'au bilan de la dernière cellule. À la correction (nbgrader),
# la même vérification lève l'erreur et la cellule ne rapporte aucun point.
import html as _html
import os as _os
import sys as _sys

import warnings as _warnings

from IPython.display import display as _display

# float(loss) d'un coût qui porte un gradient (lst_loss.append(float(loss))) : torch avertit, sans
# conséquence ici ; sans ce filtre, un encadré rose ferait croire à une erreur
_warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")

_verifications = {{}}   # question -> None (réussie) ou l'erreur de sa vérification
_prealables = {{  # question -> questions dont sa vérification utilise les réponses
{prerequisites}
}}


def _message(question):
    """Le message d'une vérification échouée, précédé des questions à corriger d'abord."""
    erreur = _verifications[question]
    if isinstance(erreur, AssertionError):
        texte = str(erreur) or "la vérification a échoué"
    elif isinstance(erreur, NameError):
        texte = f"{{erreur}} : complétez et exécutez d'abord la cellule de cette question et celles au-dessus"
    else:
        texte = f"{{type(erreur).__name__}} : {{erreur}}"
        if "NoneType" in str(erreur):
            texte += " (une de vos fonctions renvoie None : est-elle complétée, avec return ?)"
    avant = _a_corriger_avant(question)
    if avant and "corrigez d'abord" not in texte:
        texte = (f"corrigez d'abord {{' ; '.join(avant)}} : sa vérification échoue plus haut et celle-ci utilise "
                 f"sa réponse. Message : {{texte}}")
    return texte


def _a_corriger_avant(question, vues=()):
    """Les questions échouées plus haut dont `question` dépend, même indirectement : les premières causes."""
    causes = []
    for q in _prealables.get(question, ()):
        if q not in vues:
            plus_haut = _a_corriger_avant(q, vues + (q,))
            causes += plus_haut or ([q] if _verifications.get(q) is not None else [])
    return list(dict.fromkeys(causes))


class _verification:
    """Note le résultat d'une cellule de vérification et affiche son message (voir ci-dessus)."""

    def __init__(self, question):
        self.question = question

    def __enter__(self):
        return self

    def __exit__(self, type_erreur, erreur, trace):
        if erreur is not None and not isinstance(erreur, Exception):
            return False  # interruption du noyau : laissée telle quelle
        _verifications[self.question] = erreur
        if _os.environ.get("NBGRADER_EXECUTION"):
            return False  # à la correction : l'erreur reste une erreur
        if erreur is None:
            _display({{"text/plain": f"✓ {{self.question}} : vérification visible réussie",
                      "text/html": f'<div style="color:#1a7f37">✓ {{_html.escape(self.question)}} : '
                                   "vérification visible réussie</div>"}}, raw=True)
            return False
        texte = _message(self.question)
        suite = "corrigez votre réponse, puis ré-exécutez sa cellule et celle-ci"
        _display({{"text/plain": f"✗ {{self.question}} : {{texte}}\\n({{suite}})",
                  "text/html": '<div style="border-left:4px solid #cf222e;background:#ffebe9;color:#82071e;'
                               f'padding:6px 10px"><b>✗ {{_html.escape(self.question)}}</b> : '
                               f"{{_html.escape(texte)}}<br><i>{{suite}}</i></div>"}}, raw=True)
        return True'''

_MD = """## Auto-vérification

Cette cellule est la dernière exécutée par *Noyau → Redémarrer le noyau et exécuter toutes les
cellules…* : elle résume, question par question, le résultat des cellules de **vérification visibles**.
✓ : la vérification visible passe ; ✗ : elle échoue (son message) ; · : non exécutée (la raison est
donnée) ; ✎ : réponse écrite, corrigée par l'enseignant. Si l'exécution s'est arrêtée plus haut sur une
erreur (une question pas encore faite et sa ligne `raise NotImplementedError`, ou une erreur de votre
code), exécutez cette cellule à la main : elle dit où. Les vérifications cachées de la correction ne sont
pas lancées ici : un ✓ n'assure pas les points, un ✗ les fait perdre."""

_CODE = '''# Auto-vérification (cellule fournie, ne pas modifier) : relit les résultats notés par les cellules de
# vérification, sans rien ré-exécuter.
from IPython.display import Markdown, display

_questions = [  # (numéro, titre, points, réponse écrite)
{rows}
]


def _tableau_verifications():
    lignes = ["| | Question | Points | Message |", "|---|---|---|---|"]
    notees = [f"{{n}} {{t}}" for n, t, _, ecrite in _questions if not ecrite]
    faites = [q for q in notees if q in globals().get("_verifications", {{}})]
    derniere = notees.index(faites[-1]) if faites else -1
    arret = next((q for q in notees[derniere + 1:]), None)  # première vérification non exécutée après la dernière
    erreur = getattr(_sys, "last_value", None)  # la dernière erreur levée (IPython la garde)
    compte = {{"✓": 0, "✗": 0, "·": 0}}
    for numero, titre, points, ecrite in _questions:
        cle = f"{{numero}} {{titre}}"
        if ecrite:
            marque, message = "✎", "réponse écrite, corrigée par l'enseignant"
        elif cle in faites:
            marque, message = ("✓", "vérification visible réussie") if _verifications[cle] is None else ("✗", _message(cle))
        elif notees.index(cle) < derniere:
            marque, message = "·", "non exécutée : sa cellule de vérification a été sautée, exécutez-la"
        elif erreur is None:
            marque, message = "·", "pas encore exécutée"
        elif cle == arret:
            marque = "·"
            message = (f"non exécutée : l'exécution s'est arrêtée avant, sur une erreur dans la cellule de réponse "
                       f"de {{cle}} ou juste au-dessus ({{type(erreur).__name__}} : {{erreur}}) : "
                       "corrigez-la (ou complétez la question), puis exécutez la suite")
        else:
            marque, message = "·", f"non exécutée : l'exécution s'est arrêtée plus haut ({{arret}})"
        if not ecrite:
            compte[marque] += 1
        message = message.replace("|", "\\\\|").replace("\\n", " ")
        lignes.append(f"| {{marque}} | **{{numero}}** {{titre}} | {{points:g}} | {{message}} |")
    lignes.append("")
    lignes.append(f"Vérifications visibles réussies : {{compte['✓']}} / {{len(notees)}} questions notées "
                  f"automatiquement ; échouées : {{compte['✗']}} ; non exécutées : {{compte['·']}}.")
    return "\\n".join(lignes)


display(Markdown(_tableau_verifications()))'''


def _assignment_of(nb) -> str:
    ids = {grade_id(c) for c in nb.cells}
    for assignment, deps in prerequisites().items():
        if ids & set(deps):
            return assignment
    raise ValueError("unknown assignment: no grade id of a registered assignment's prerequisites in this notebook")


def setup_source(nb) -> str:
    """The generated end of the setup cell (from SETUP_MARK on)."""
    found = labels.labels_of(nb)
    deps = prerequisites()[_assignment_of(nb)]
    lines = [f"    {found[g].short!r}: ({', '.join(repr(found[d].short) for d in ds)},),"
             for g, ds in sorted(deps.items(), key=lambda kv: found[kv[0]].order)]
    return _SETUP.format(prerequisites="\n".join(lines))


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


def setup_cell(nb):
    return next(c for c in nb.cells if grade_id(c) == "setup")


def given_setup(source: str) -> str:
    """The setup cell's own code, before the generated part."""
    for mark in (SETUP_MARK, _OLD_SETUP_MARK):
        if mark in source:
            source = source[:source.index(mark)]
    return source.rstrip("\n")


def write(path) -> None:
    nb = nbformat.read(str(path), as_version=4)
    nb.cells = [c for c in nb.cells if c.get("id") not in (MD_ID, CODE_ID)]
    setup = setup_cell(nb)
    setup.source = given_setup(setup.source) + "\n\n" + setup_source(nb)
    nb.cells += cells(nb)
    nbformat.write(nb, str(path))
    print(f"self-check written: {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tpkit.selfcheck")
    parser.add_argument("--root", type=Path, default=paths.ROOT,
                        help="the course folder (default: this kit); docs/exemple for the worked example")
    parser.add_argument("--assignment", help="only this assignment (default: every assignment of source/)")
    args = parser.parse_args(argv)
    known = assignments.names(args.root)
    if args.assignment and args.assignment not in known:
        parser.error(f"unknown assignment {args.assignment!r} in {args.root}: {', '.join(known)}")
    for name in [args.assignment] if args.assignment else known:
        write(args.root / "source" / name / paths.notebook_name(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
