"""The feedback page a student reads (issue #10): questions named as in the notebook, a message and a
"what to do" line per failed question, wrapped text, nothing loaded from the network, no data file
copied. Rendered from the template directly (cheap); the grading runs of test_pipeline.py render it too."""
import copy
import html
import re

import nbformat
import pytest

from tpkit.grading.converters import FrenchFeedback
from tpkit.grading.feedback_exporter import FeedbackExporter
from tpkit.submissions import solution_submission
from tpkit.vocabulary import grade_id

MAIN = "tp_reseaux_neurones"  # the course's main assignment


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from nbgrader.coursedir import CourseDirectory
    config = FrenchFeedback(coursedir=CourseDirectory(root=str(tmp_path_factory.mktemp("course")))).config
    nb = copy.deepcopy(solution_submission(assignment=MAIN))
    for cell in nb.cells:
        md = cell.metadata.get("nbgrader", {})
        if not md.get("grade"):
            continue
        md["score"], md["needs_manual_grade"] = (md["points"], False)
        if cell.cell_type == "markdown":
            md["score"], md["needs_manual_grade"] = None, True
        if grade_id(cell) == "q2_cout":
            md["score"] = 0
            cell.outputs = [nbformat.v4.new_output(
                "error", ename="AssertionError", traceback=["Échec du test : x"],
                evalue="`cout` renvoie l'opposé du coût : il manque le signe moins de J = −1/n Σ Y log Ŷ. " * 3)]
        if grade_id(cell) == "q5_minibatch":
            md["score"] = 0
            cell.outputs = [nbformat.v4.new_output("error", ename="NameError", evalue="name 'idx' is not defined",
                                                   traceback=[])]
    exporter = FeedbackExporter(config=config)
    resources = {"nbgrader": {"assignment": "tp_reseaux_neurones", "notebook": "tp_reseaux_neurones", "score": 16, "max_score": 20, "late_penalty": 0}}
    html, _ = exporter.from_notebook_node(nb, resources=resources)
    return html


def test_questions_are_named_as_in_the_notebook(page):
    assert ">Q2.3 pred</a>" in page and ">Q5.1 à Q5.4 minibatch</a>" in page
    assert "Vérification — Q2.5 et Q2.6 cout : échoué" in page
    assert "Votre réponse — Q2.3 pred" in page          # answer cells named after their question
    assert ">q2_pred<" not in page


def test_each_failed_question_says_what_to_do(page):
    rows = re.findall(r'<tr class="failure">(.*?)</tr>', page, re.S)
    assert len(rows) == 2
    assert "il manque le signe moins" in rows[0] and "À faire :" in rows[0]
    assert "NameError" in rows[1] and "exécutez le notebook dans l'ordre" in html.unescape(rows[1])


def test_text_wraps_and_nothing_comes_from_the_network(page):
    assert "white-space: pre-wrap" in page and not re.search(r"[^-]height: 37px", page)
    assert "mathjax" not in page.lower().replace("no mathjax", "")
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=[\"']?(https?:)?//", page, re.I)


def test_feedback_folder_gets_no_data_file(tmp_path):
    from nbgrader.coursedir import CourseDirectory
    src = tmp_path / "autograded" / "alice" / MAIN
    src.mkdir(parents=True)
    (src / "digitz.npz").write_bytes(b"data")
    conv = FrenchFeedback(coursedir=CourseDirectory(root=str(tmp_path)))
    conv.init_assignment(MAIN, "alice")
    assert not list((tmp_path / "feedback").rglob("*.npz"))


def _nbconvert_accessibility(page: str) -> str:
    """nbconvert 7's own pass (HTMLExporter.from_notebook_node), the reference for accessibility.mark."""
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(page, features="html.parser")
    for elem in soup.select("img:not([alt])"):
        elem.attrs["alt"] = "No description has been provided for this image"
    for elem in soup.select(".jp-Notebook div.jp-Cell-inputWrapper"):
        elem.attrs["tabindex"] = "0"
    for elem in soup.select(".jp-Notebook div.jp-OutputArea-output"):
        elem.attrs["tabindex"] = "0"
    return str(soup)


def test_accessibility_pass_is_nbconvert_s_without_the_round_trip(page):
    from bs4 import BeautifulSoup
    from tpkit.grading import accessibility
    tricky = (
        '<!DOCTYPE html><html><body><img src="a.png"><img src="b.png" alt="b"><img src="c.png" alt>'
        '<img src="d.png"/><p title="<img src=x>">&#39;quoted&#39; &amp; <br></p>'
        '<script>var s = "<img src=y>";</script><style>a > b {}</style><!-- <img src=z> -->'
        '<div class="jp-Cell-inputWrapper">outside</div>'
        '<main class="x jp-Notebook"><div class="jp-Cell jp-Cell-inputWrapper">in</div>'
        '<div class="jp-OutputArea-output" tabindex="0">kept</div><ul><li>open item</ul>'
        '<div class="jp-OutputArea-output"><img\nsrc="e.png"\n></div>'
        '<pre>a <span class="k">b</span>\n<img src="f.png"></pre><pre class="x"><span>c\n</span> d</pre></main>'
        '<div class="jp-OutputArea-output">after</div></body></html>')
    # the page as the exporter renders it, its images without alt again
    bare = page.replace(' alt="No description has been provided for this image"', "")
    for html_page in (tricky, bare):
        marked = accessibility.mark(html_page)
        assert str(BeautifulSoup(marked, features="html.parser")) == _nbconvert_accessibility(html_page)
    assert accessibility.mark(tricky).count('alt="No description') == 4  # the one in a <pre> too
    assert accessibility.mark(tricky).count('tabindex="0"') == 3


def test_an_answer_without_a_test_of_its_own_is_named_by_its_question():
    """« Votre réponse — r2_lignes » named the cell; it is the question above it that students know."""
    from tpkit.grading.feedback import question_label
    assert question_label("r2_lignes", MAIN).startswith("Q2.")
    assert question_label("r2_pred", MAIN) == question_label("q2_pred", MAIN)
    assert question_label("m2_approximation", MAIN).startswith("Q2.")
    assert question_label("inconnu", MAIN) == "inconnu"
