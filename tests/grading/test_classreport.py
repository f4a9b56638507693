"""The class report (issue #9): exports/rapport_classe.html and its PNG figures, read in headless
Chromium from the page itself after the examples were graded (tests/grading/test_pipeline.py's first run):
figures are real images, the numbers are the gradebook's, no hidden test text. Screenshots are kept
in the test's temporary folder (first screen and whole page)."""
from pathlib import Path

import headless
import pytest
from nbgrader.api import Gradebook
from test_pipeline import EXAMPLES, A, course, first_run, hidden_lines, shared  # noqa: F401

from tpkit.grading import similarity

MAIN = "tp_reseaux_neurones"  # the course's main assignment


def test_similarity_ignores_names_comments_and_the_skeleton():
    skeleton = {"q": "def pred(X, W, B):\n    # VOTRE CODE ICI\n    raise NotImplementedError()\n"}
    kept = frozenset({"pred", "X", "W", "B", "torch"})
    a = ("def pred(X, W, B):\n    logits = X @ W + B  # scores\n    e = torch.exp(logits - logits.max(1, keepdim=True)[0])\n"
         "    return e / e.sum(1, keepdim=True)\n") * 3
    b = ("def pred(X, W, B):\n    z = X @ W + B\n\n    ez = torch.exp(z - z.max(1, keepdim=True)[0])   \n"
         "    return ez / ez.sum(1, keepdim=True)\n") * 3
    c = ("def pred(X, W, B):\n    return torch.softmax(torch.mm(X, W) + B, dim=1)\n"
         "    # une autre solution, plus courte, écrite autrement\n") * 3
    blank = skeleton["q"]

    def sub(name, source):
        return similarity.Submission(name, {"q": source},
                                     {"q": similarity._tokens("\n".join(
                                         line for line in source.split("\n")
                                         if line.strip() not in {x.strip() for x in skeleton["q"].split("\n")}),
                                         kept)})
    subs = [sub("a", a), sub("b", b), sub("c", c), sub("vide1", blank), sub("vide2", blank)]
    pairs = similarity.similar_pairs(subs, min_tokens=20)
    assert [(p.a, p.b) for p in pairs] == [("a", "b")] and pairs[0].score == 1.0


def test_every_submission_that_is_not_ok_is_listed_with_its_reasons_and_pairs_name_both(tmp_path):
    """« À regarder » lists the partial ones too (a renamed notebook, a deleted test cell), each with
    its reasons; a similar pair names both students (full names when an LMS gave them), once, and
    its cells by their question."""
    from tpkit.grading import classreport
    from tpkit.grading.options import Options
    from tpkit.grading.results import RunReport, StudentResult
    png = tmp_path / "f.png"
    png.write_bytes(b"\x89PNG")
    figures = {"distribution": png, "questions": png, "durees": png}
    run = RunReport(A, ["q2_pred"], {"q2_pred": 1.0}, 20.0, {
        "ok1": StudentResult("ok1", "ok", [], {"q2_pred": 1.0}, 20.0, 20.0),
        "p1234567": StudentResult("p1234567", "partial", ["notebook rendu sous le nom « TP_Dupont.ipynb »"],
                                  {"q2_pred": 1.0}, 20.0, 20.0),
        "rate": StudentResult("rate", "failed", ["fichier illisible (JSON invalide)"], {}, None, 20.0)})
    pair = similarity.Pair("ok1", "p1234567", 0.97, [("r2_lignes", 0.97)])
    subs = {s: similarity.Submission(s, {"r2_lignes": f"x = {s!r}"}, {}) for s in ("ok1", "p1234567")}
    page = classreport.render(Options(assignment=MAIN, root=tmp_path, workers=1), run, figures, [], {}, [pair], subs,
                              {"q2_pred": "Q2.3 pred"}, set(), {"p1234567": "Élodie Lefèvre"})
    look = page.split('id="a-regarder"')[1].split("</table>")[0]
    assert 'data-student="p1234567"' in look and "TP_Dupont.ipynb" in look and "Élodie Lefèvre" in look
    assert 'data-student="rate"' in look and "JSON invalide" in look and 'data-student="ok1"' not in look
    assert '<b id="n-a-regarder">2</b>' in page
    pairs = page.split('id="paires"')[1].split("</table>")[0]
    assert pairs.count("data-pair=") == 1 and page.count("data-pair=") == 1
    assert "Élodie Lefèvre" in pairs and "ok1" in pairs
    assert "Q2.4 lignes" in pairs or "Q2." in pairs.split("cellules semblables")[1]
    assert "r2_lignes —" not in pairs


def gradebook_view(root: Path) -> tuple:
    """({student: total /20 or None}, {question: success rate among graded answers}) from the gradebook."""
    totals, success = {}, {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "rn_pytorch") as gb:
        for sub in gb.assignment_submissions(A):
            grades = sub.notebooks[0].grades
            if all(g.auto_score is None and g.manual_score is None for g in grades):
                totals[sub.student.id] = None  # not graded (failed)
                continue
            totals[sub.student.id] = round(float(sub.score) * 20 / float(sub.max_score), 2)
            for g in grades:
                if g.auto_score is not None or g.manual_score is not None:
                    success.setdefault(g.cell.name, []).append(float(g.score) >= float(g.max_score) - 1e-9)
    return totals, {q: sum(v) / len(v) for q, v in success.items()}


@pytest.mark.slow
@pytest.mark.skipif(headless.CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_class_report_in_chromium(first_run, tmp_path):  # noqa: F811 (fixture imported from test_pipeline)
    *_, saved = first_run
    root = saved / "course"
    page_path = root / "exports" / "rapport_classe.html"
    figures = sorted((root / "exports" / "figures").glob("*.png"))
    assert [f.name for f in figures] == ["distribution.png", "durees.png", "questions.png"]
    assert all(f.read_bytes().startswith(b"\x89PNG") and f.stat().st_size > 5000 for f in figures)
    html_text = page_path.read_text(encoding="utf-8")
    assert "<script" not in html_text and 'src="http' not in html_text and "<link" not in html_text  # self-contained

    totals, success = gradebook_view(root)
    with headless.browser(tmp_path / "profile", 1280, 900) as page:
        page.goto(page_path.as_uri())
        page.wait("[...document.images].every(i => i.complete)")
        page.screenshot(tmp_path / "rapport_premier_ecran.png")
        page.screenshot(tmp_path / "rapport_complet.png", full_page=True)
        images = page.eval("[...document.images].map(i => [i.naturalWidth, i.naturalHeight, i.alt])")
        first_screen = page.eval("[...document.images].slice(0, 2).map(i => i.getBoundingClientRect().top)")
        text = page.eval("document.body.innerText")
        cards = page.eval("Object.fromEntries([...document.querySelectorAll('.card b')].map(b => [b.id, b.innerText]))")
        rows = page.eval("[...document.querySelectorAll('#notes tr[data-student]')]"
                         ".map(r => [r.dataset.student, r.dataset.total])")
        questions = page.eval("[...document.querySelectorAll('#questions tr[data-question]')]"
                              ".map(r => [r.dataset.question, r.dataset.success, r.cells[0].innerText, r.cells[5].innerText])")
        look = page.eval("[...document.querySelectorAll('#a-regarder tr[data-student]')].map(r => r.innerText)")
        pairs = page.eval("[...document.querySelectorAll('#paires tr[data-pair]')].map(r => r.dataset.pair)")
    assert len(images) == 3 and all(w > 300 and h > 150 for w, h, _ in images), images
    assert all(top < 900 for top in first_screen)  # distribution and success per question on the first screen
    # numbers match the gradebook
    assert cards["n-rendus"] == str(len(EXAMPLES)) and sorted(s for s, _ in rows) == EXAMPLES
    for student, total in rows:
        assert (float(total) if total else None) == totals[student], student
    graded = [t for t in totals.values() if t is not None]
    assert abs(float(cards["moyenne"]) - sum(graded) / len(graded)) < 0.01
    assert [q for q, *_ in questions][:2] == ["q1_chargement", "q1_etiquettes"]  # notebook order
    for q, rate, label, _ in questions:
        if rate:
            assert abs(float(rate) - success[q]) < 1e-3, q
    labels = {q: label for q, _, label, _ in questions}
    assert labels["q2_pred"].startswith("Q2.3 pred")
    diag = {q: d for q, _, _, d in questions}
    assert "softmax" in diag["q2_pred"] or "pred" in diag["q2_pred"]  # the class's most frequent messages
    # flagged and failed submissions with their reasons
    assert any("json_invalide" in r and "JSON invalide" in r for r in look)
    # the four copies of the partly done notebook are listed as similar; the blank one is not
    listed = {frozenset(p.split("|")) for p in pairs}
    copies = ["cellule_dupliquee", "notebook_renomme", "partiel", "test_supprime"]
    assert {frozenset({a, b}) for i, a in enumerate(copies) for b in copies[i + 1:]} <= listed
    assert not any("vierge" in p for p in pairs)
    # no hidden test text
    for marker in ("BEGIN HIDDEN", "verifier(", "tpkit"):
        assert marker not in text
    assert not [h for h in hidden_lines() if h in text]
    assert (tmp_path / "rapport_premier_ecran.png").stat().st_size > 10000
