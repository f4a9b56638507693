"""The TP notebook (issue #3): the instructor's notebook grades to full marks on itself, the blank
release to zero, the release is generated from the source and leaks nothing."""
import filecmp
import re
import subprocess
import sys
import unicodedata

import pytest
from conftest import generated

from tpkit import execution, paths
from tpkit.submissions import read
from tpkit.vocabulary import grade_id

MAIN = "tp_reseaux_neurones"  # the course's main assignment

AUTOGRADED_POINTS = 17.5


def _graded_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


def test_points_and_grade_ids():
    nb = read(paths.source_notebook(MAIN))
    ids = [grade_id(c) for c in nb.cells if grade_id(c)]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)
    graded = _graded_cells(nb)
    assert all(c.metadata.nbgrader["points"] > 0 for c in graded)
    total = sum(c.metadata.nbgrader["points"] for c in graded)
    auto = sum(c.metadata.nbgrader["points"] for c in graded if not c.metadata.nbgrader.get("solution"))
    manual = [c for c in graded if c.metadata.nbgrader.get("solution")]
    assert total == 20
    assert auto == AUTOGRADED_POINTS >= 15
    assert all(c.cell_type == "markdown" for c in manual)
    # every autograded test cell has visible checks and calls the hidden checks
    for c in graded:
        if c.cell_type == "code":
            visible = c.source.split("### END HIDDEN TESTS")[-1]
            assert "assert" in visible, grade_id(c)
            assert f'verifier("{grade_id(c)}", globals())' in c.source


def _solution_lines(nb):
    """Lines inside solution regions and whole manual answers, minus lines that the source
    also shows outside solutions (instructions quoting code)."""
    inside, outside = set(), set()
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if not meta.get("solution"):
            outside.update(line.strip() for line in c.source.splitlines())
            continue
        if c.cell_type == "markdown":
            inside.update(line.strip() for line in c.source.splitlines())
            continue
        region = False
        for line in c.source.splitlines():
            if "### BEGIN SOLUTION" in line:
                region = True
            elif "### END SOLUTION" in line:
                region = False
            elif region:
                inside.add(line.strip())
            else:
                outside.add(line.strip())
    shown = "\n".join(outside)
    return {line for line in inside - outside if len(line) >= 8 and line not in shown}


def test_release_leaks_no_solution_and_no_hidden_test():
    source = read(paths.source_notebook(MAIN))
    release_text = "\n".join(c.source for c in read(paths.release_notebook(MAIN)).cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "tpkit", "verifier("):
        assert marker not in release_text
    leaked = [line for line in _solution_lines(source) if line in release_text]
    assert not leaked, leaked
    raw = paths.release_notebook(MAIN).read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in raw and "HIDDEN" not in raw


def test_release_keeps_the_statement_skeleton():
    text = "\n".join(c.source for c in read(paths.release_notebook(MAIN)).cells)
    for skeleton in ("def pred(X, W, B):", "def cout(Y, Yhat):", "def pred2(X, W1, B1, W2, B2):",
                     "class MLP(th.nn.Module):", "super(MLP, self).__init__()",
                     "def forward(self, x):", "for i in range(niter):", "for i in range(niter_mb):",
                     "step = 1", "niter = 200", "lst_loss = []", "nb_hidden = 100", "mb = 20",
                     "# VOTRE CODE ICI\nraise NotImplementedError(\"cellule à compléter : remplacez cette ligne par votre code\")", "VOTRE RÉPONSE ICI"):
        assert skeleton in text, skeleton


@pytest.mark.slow
def test_committed_release_is_what_nbgrader_generates(session_dir):
    """`nbgrader generate_assignment` (run once per session by `release.generate` in a fresh course,
    the one the grading tests copy) writes exactly the committed release."""
    fresh = generated(session_dir) / "release" / MAIN
    names = sorted(p.name for p in fresh.iterdir())
    assert names == sorted(p.name for p in paths.release_dir(MAIN).iterdir())
    match, mismatch, errors = filecmp.cmpfiles(fresh, paths.release_dir(MAIN), names, shallow=False)
    assert not mismatch and not errors, f"release out of date, run `make release`: {mismatch}"


@pytest.mark.slow
def test_solution_grades_to_full_marks(graded_solution):
    results = execution.results(graded_solution)
    failed = {g: r.message for g, r in results.items() if r.points < r.max_points}
    assert not failed
    assert sum(r.points for r in results.values()) == AUTOGRADED_POINTS


@pytest.mark.slow
def test_solution_runs_without_any_error_or_warning_on_stderr(graded_solution):
    for cell in graded_solution.cells:
        if cell.cell_type == "code":
            bad = [o for o in cell.outputs if o.output_type == "error"
                   or (o.output_type == "stream" and o.name == "stderr")]
            assert not bad, (grade_id(cell), bad)


@pytest.mark.slow
def test_blank_release_runs_to_the_end_and_scores_zero(graded_blank):
    code = [c for c in graded_blank.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "every cell of the blank release must run"
    results = execution.results(graded_blank)
    assert len(results) == len([c for c in _graded_cells(graded_blank) if c.cell_type == "code"])
    scored = {g: r.points for g, r in results.items() if r.points}
    assert not scored
    # failures are reported in French, not as raw Python errors from the checks
    hidden = [r.message for r in results.values() if r.message.startswith("AssertionError")]
    assert len(hidden) >= len(results) - 2


def _validate(path, *flags):
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(path), *flags],
                          cwd=path.parent, env=execution.kernel_env(), capture_output=True, text=True)
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_nbgrader_validate_passes_on_source():
    out = _validate(paths.source_notebook(MAIN))
    assert "Success! Your notebook passes all the tests." in out, out[-3000:]


@pytest.mark.slow
def test_nbgrader_validate_invert_passes_on_release():
    out = _validate(paths.release_notebook(MAIN), "--invert")
    assert "Success! The notebook does not pass any tests." in out, out[-3000:]


# ------------------------------------------------------------------ the statement, whole (issue #10)
# the statement lies next to the main checkout (../shared), worktrees one level deeper
STATEMENT = next((d / "shared" / "enonce" / "tp_reseaux_neurones_pytorch.txt" for d in paths.ROOT.parents
                  if (d / "shared" / "enonce" / "tp_reseaux_neurones_pytorch.txt").is_file()),
                 paths.ROOT.parent / "shared" / "enonce" / "tp_reseaux_neurones_pytorch.txt")

#: Every question of the statement's sections 1-5, in its order: (statement number, its words in the
#: statement, the notebook's question number, the words that ask it in the notebook's markdown cell).
#: Section 4's class part restarts at 1 in the statement: the notebook numbers it Q4.6-Q4.11; the
#: statement's unnumbered quadratic-cost question after 3.6 is the notebook's Q3.7.
QUESTION_MAP = [
    ("1.1", "Télécharger le fichier ’digitz.npz’ et le charger en mémoire", "Q1.1", "Chargez le fichier `digitz.npz`"),
    ("1.2", "Transformer les vecteurs de classe pour qu’il contiennent les classes (0,1,2)", "Q1.2",
     "Transformez les vecteurs de classes"),
    ("1.3", "Stocker le nombre d’exemples d’apprentissage n, le nombre de variables d", "Q1.3",
     "Stockez le nombre d'exemples d'apprentissage `n`"),
    ("1.4", "Créer les matrices Y et Yt de type One-Hot-Encoding", "Q1.4", "*One-Hot-Encoding*"),
    ("1.5", "Convertir les array numpy en tenseurs torch", "Q1.5", "Convertissez les tableaux numpy en tenseurs torch"),
    ("2.1", "Initialiser la matrice W de taille d × p", "Q2.1", "Initialisez `W` (taille d × p)"),
    ("2.2", "Initialiser la matrice de biais B de taille 1×p", "Q2.2", "Initialisez le biais `B` de taille 1 × p"),
    ("2.3", "Calculer la prediction Ŷ pour les données d’apprentissage", "Q2.3",
     "prédiction `Yhat` sur les données d'apprentissage"),
    ("2.4", "Vérifier que les lignes de Ŷ somment à 1.", "Q2.4", "Vérifiez que les lignes de Ŷ somment à 1"),
    ("2.4", "La prédiction est elle une bonne approximation des vrais étiquettes Y ?", "Q2.4",
     "La prédiction Ŷ est-elle une bonne approximation des vraies étiquettes `Y` ?"),
    ("2.5", "Calculer le coût J entre la prédiction Ŷ et Y", "Q2.5", "calcule le coût J"),
    ("2.6", "Coder une fonction def pred(X,W,B) qui calcule la prédiction", "Q2.3", "Écrivez la fonction `pred(X, W, B)`"),
    ("2.6", "fonction def cout", "Q2.6", "Écrivez la fonction `cout(Y, Yhat)`"),
    ("2.7", "Calculer les gradients du coût par rapport à W,B en exécutant loss.backward()", "Q2.7",
     "Calculez les gradients du coût par rapport à `W` et `B` avec `loss.backward()`"),
    ("2.8", "Exécuter plusieurs fois le code pour différentes initialisations aléatoires de W", "Q2.8",
     "pour différentes initialisations\naléatoires de `W`"),
    ("3.1", "Initialiser le pas step=1, le nombre d’itérations niter=200", "Q3.1",
     "le pas `step = 1`, le nombre\nd'itérations `niter = 200` et la liste des coûts `lst_loss`"),
    ("3.2", "Dans une boucle for, exécuter niter fois", "Q3.2", "exécutez `niter` fois dans la boucle"),
    ("3.3", "visualiser l’évolution du coût lst_loss", "Q3.3", "Visualisez l'évolution du coût `lst_loss`"),
    ("3.3", "Est ce que l’algorithme a convergé ?", "Q3.3", "Est-ce que l'algorithme a convergé ?"),
    ("3.4", "Changer le nombre max d’itération niter et la valeur du pas step", "Q3.4",
     "Changez le nombre d'itérations et la valeur du pas"),
    ("3.4", "observer les effets sur la décroissance du coût", "Q3.4",
     "Quels sont les effets du nombre d'itérations `niter` et du pas `step` sur la décroissance du coût ?"),
    ("3.5", "Calculer le taux de bonne reconnaissance pour votre modèle", "Q3.5",
     "Calculez le taux de bonne reconnaissance du modèle appris"),
    ("3.6", "Copier coller votre boucle de descente de gradient et la modifier pour utiliser la classe", "Q3.6",
     "Copiez votre boucle de descente de gradient et modifiez-la pour utiliser la classe"),
    ("3.(coût quadratique)", "Quelle est la performance de classifieur dans ce cas la ?", "Q3.7",
     "Quelle est la performance du classifieur dans ce cas-là ?"),
    ("4.1", "Initialiser la variable nb_hidden=100", "Q4.1", "`nb_hidden = 100` neurones cachés (Q4.1)"),
    ("4.2", "Initialiser les parametres W1,B1", "Q4.2", "`W1`, `B1` (tailles\nd × nb_hidden et 1 × nb_hidden)"),
    ("4.3", "Implémenter la fonction def pred2(X,W1,B1, W2, B2)", "Q4.3", "la fonction `pred2(X, W1, B1, W2, B2)`"),
    ("4.4", "Initialiser un optimiseur de type SGD en lui donnant à optimiser tous les paramètres", "Q4.4",
     "Créez un optimiseur `th.optim.SGD` sur tous les paramètres"),
    ("4.5", "Quelle est la performance ? Que se passe-t-il si on change le nombre de neurones cachées ?", "Q4.5",
     "Quelle est la performance (`taux_test2`) ? Que se passe-t-il si on change le nombre de neurones cachés ?"),
    ("4 (classe) 1", "Modifiez la fonction forward pour qu’elle retourne x", "Q4.6", "Modifiez `forward` pour qu'elle retourne `x`"),
    ("4 (classe) 2", "Modifier la fonction __init__ en créant à l’intérieur les deux couches linéaires", "Q4.7",
     "Modifiez `__init__` pour créer les deux couches linéaires"),
    ("4 (classe) 3", "Modifier la fonction forward pour qu’elle calcule la prédiction de réseau de neurone", "Q4.8",
     "`forward` pour qu'elle calcule la prédiction du réseau"),
    ("4 (classe) 4", "Initialiser un modèle de votre classe et vérifiez que les lignes de la sortie somment à 1", "Q4.9",
     "Créez un réseau `mlp = MLP()` et vérifiez que\nles lignes de sa sortie somment à 1"),
    ("4 (classe) 5", "Optimiser les paramètres du réseau de neurones avec un boucle et un optimiseur", "Q4.10",
     "Optimisez les paramètres du réseau `mlp` avec une boucle et un optimiseur"),
    ("4 (classe) 6", "Vérifier que vous retrouvez des performances similaires à l’implémentation manuelle", "Q4.11",
     "vérifiez que vous\nretrouvez des performances similaires à l'implémentation manuelle"),
    ("5.1", "Initialisez la taille du minibatch mb=20", "Q5.1", "minibatchs de taille `mb = 20`"),
    ("5.2", "selectionner mb exemples aléatoirement avec th.randint(n,(mb,))", "Q5.2",
     "sélectionnez `mb` exemples aléatoirement avec\n`idx = th.randint(n, (mb,))`"),
    ("5.3", "Observer le coût le long des itérations", "Q5.3", "Tracez le coût `lst_loss_mb` le long des itérations"),
    ("5.3", "Il y a-t-il bien une tendance à la décroissance ?", "Q5.3", "Y a-t-il bien une tendance à la décroissance"),
    ("5.4", "Choisir un nombre d’itérations en gradient stochastique qui permet de ”converger”", "Q5.4",
     "Choisissez un nombre d'itérations"),
    ("5.5", "Quelle est la performance finale ? Est-elle meilleure que la performance obtenue avec un", "Q5.5",
     "Quelle est la performance finale ?\nEst-elle meilleure que la performance obtenue avec un gradient complet"),
    ("5.6", "L’optimisation ets elle plus rapide ? plus lente ?", "Q5.6", "L'optimisation est-elle plus\nrapide ? plus lente"),
]
_QMARK = re.compile(r"\*{1,2}(Q\d+\.\d+[^*]*?)\*{1,2}")
_QNUM = re.compile(r"Q(\d+)\.(\d+)")


def _flat(text: str) -> str:
    """Whitespace collapsed, accents composed (the statement, extracted from a PDF, decomposes them)."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _covered(marker_cell: str) -> set:
    """Question numbers a markdown cell's markers cover: "Q4.1 à Q4.3" covers Q4.1, Q4.2, Q4.3."""
    out = set()
    for marker in _QMARK.findall(marker_cell):
        nums = [(int(a), int(b)) for a, b in _QNUM.findall(marker)]
        if " à " in marker and len(nums) == 2 and nums[0][0] == nums[1][0]:
            nums = [(nums[0][0], k) for k in range(nums[0][1], nums[1][1] + 1)]
        out |= {f"Q{a}.{b}" for a, b in nums}
    return out


def _asking_cell(cells, number: str, words: str):
    for i, c in enumerate(cells):
        if c.cell_type == "markdown" and not c.metadata.get("nbgrader", {}).get("grade") \
                and number in _covered(c.source) and _flat(words) in _flat(c.source):
            return i
    return None


def question_map(nb=None) -> list:
    """(statement number, statement words, notebook number, index of the cell that asks it)."""
    cells = (nb or read(paths.source_notebook(MAIN))).cells
    return [(s, sw, n, _asking_cell(cells, n, nw)) for s, sw, n, nw in QUESTION_MAP]


def test_every_statement_question_is_asked_in_the_notebook():
    if not STATEMENT.is_file():  # the course folder copied away from the project's shared/ folder
        pytest.skip(f"statement not found next to the checkout ({STATEMENT})")
    statement = _flat(STATEMENT.read_text(encoding="utf-8"))
    missing_statement = [sw for _, sw, _, _ in QUESTION_MAP if _flat(sw) not in statement]
    assert not missing_statement, f"not in the statement file: {missing_statement}"
    for nb in (read(paths.source_notebook(MAIN)), read(paths.release_notebook(MAIN))):
        unasked = [(s, n, nw) for (s, _, n, nw), (_, _, _, cell) in zip(QUESTION_MAP, question_map(nb))
                   if cell is None]
        assert not unasked, f"statement questions the notebook does not ask: {unasked}"


def test_question_numbers_follow_the_statement_order():
    cells = read(paths.source_notebook(MAIN)).cells
    first = {}
    for i, c in enumerate(cells):
        if c.cell_type == "markdown":
            for number in _covered(c.source):
                first.setdefault(number, i)
    numbers = sorted({n for _, _, n, _ in QUESTION_MAP}, key=lambda q: tuple(map(int, q[1:].split("."))))
    positions = [first[n] for n in numbers]
    assert positions == sorted(positions), list(zip(numbers, positions))


def test_each_written_answer_sits_right_below_its_question():
    from tpkit import labels
    nb = read(paths.source_notebook(MAIN))
    found = labels.labels_of(nb)
    for i, c in enumerate(nb.cells):
        meta = c.metadata.get("nbgrader", {})
        if c.cell_type == "markdown" and meta.get("grade"):
            above = nb.cells[i - 1]
            assert above.cell_type == "markdown" and "?" in above.source, grade_id(c)
            assert _QMARK.search(above.source), grade_id(c)
            assert found[grade_id(c)].number in _covered(above.source) | {_QMARK.search(above.source).group(1)}


def test_visible_checks_state_the_hidden_thresholds():
    """The hidden requirements a student must meet are written in the notebook (issue #10)."""
    from tpkit.assignments.tp_reseaux_neurones import thresholds as T
    text = "\n".join(c.source for c in read(paths.release_notebook(MAIN)).cells)
    assert f"niter_mb >= {T.MB_NITER_MIN}" in text and f"au moins {T.MB_NITER_MIN}" in text
    for value in (T.GD_FINAL_LOSS_MAX, T.GD_TEST_ACC_MIN, T.MLP_MANUAL_TEST_ACC_MIN, T.MLP_TEST_ACC_MIN,
                  T.MB_TEST_ACC_MIN, T.W_STD_MIN, T.W_STD_MAX, T.GD_MAX_RISES, T.MB_MIN_RISE_SHARE):
        assert f"{value:g}" in text, value


def test_self_check_cell_is_in_sync_and_test_cells_are_titled():
    from tpkit import labels, selfcheck
    nb = read(paths.source_notebook(MAIN))
    assert nb.cells[-1].source == selfcheck.code_source(nb), "run `python -m tpkit.selfcheck` then `make release`"
    found = labels.labels_of(nb)
    for c in _graded_cells(nb):
        if c.cell_type == "code":
            visible = c.source.split("### END HIDDEN TESTS\n")[-1]
            short = found[grade_id(c)].short
            assert visible.startswith(f"{selfcheck.TITLE_PREFIX}{short}\n{selfcheck.guard_line(short)}\n"), grade_id(c)
