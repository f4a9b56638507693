"""nbgrader's converters as the kit runs them (tpkit.grading.converters): the feedback page runs nothing a
student wrote."""
import base64
import re
from html import unescape

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader.coursedir import CourseDirectory

from tpkit.grading.converters import FrenchFeedback
from tpkit.grading.options import Options, load_config

MAIN = "tp_reseaux_neurones"  # the course's main assignment

ASSIGNMENT = MAIN


def _feedback_html(nb) -> str:
    """The student's notebook through the feedback's own exporter, preprocessors and template (less
    GetGradesFr, which reads the gradebook: the scores are given here)."""
    cfg = load_config(Options(assignment=MAIN))
    fb = FrenchFeedback(coursedir=CourseDirectory(config=cfg), config=cfg)
    exporter = fb.exporter_class(parent=fb, config=fb.config)
    for pp in fb.preprocessors:
        if pp.__name__ != "GetGradesFr":
            exporter.register_preprocessor(pp, enabled=True)
    resources = {"nbgrader": {"assignment": ASSIGNMENT, "notebook": ASSIGNMENT, "score": 1, "max_score": 20,
                              "late_penalty": 0},
                 "tpkit": {"student": "<b>s</b>", "remarks": ["<script>alert('remarque')</script>"]}}
    html, _ = exporter.from_notebook_node(nb, resources=resources)
    return html


def test_feedback_html_runs_nothing_from_the_student():
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()
    nb = new_notebook(cells=[
        new_markdown_cell("# Ma réponse\n\nTexte *important* <script>alert('md')</script>\n"
                          "<img src=x onerror=alert('img')> [clic](javascript:alert('lien')) "
                          "[doc](https://pytorch.org)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n$x^2$"),
        new_code_cell("display(...)", outputs=[
            new_output("display_data", data={"text/html": "<b>gras</b><script>alert('html')</script>"
                                              "<img src=y onerror=alert('out')><a href='JaVaScRiPt:alert(1)'>a</a>"
                                              "<iframe src='//evil.example'></iframe><style>body{}</style>",
                                              "text/plain": "html"}),
            new_output("display_data", data={"application/javascript": "alert('js')", "text/plain": "js"}),
            new_output("display_data", data={"text/markdown": "<svg onload=alert('svg')>**m**"}),
            new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"},
                       metadata={"image/png": {"width": "1 onerror=alert('meta')"},
                                 "filenames": {"image/png": "javascript:alert('fichier')"}}),
        ]),
    ])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"x": "</script><script>alert(1)"}}
    html = _feedback_html(nb)
    body = html.split("<body", 1)[1]
    # nothing runs: no script element, no event handler attribute, no javascript: URL, no frame (what
    # the student wrote stays visible as inert text, e.g. "&lt;img src=x onerror=...&gt;")
    assert "<script" not in body
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", html, re.I)
    assert not re.search(r"(href|src)\s*=\s*[\"']?\s*javascript:", html, re.I)
    assert "<iframe" not in body and "&lt;iframe" in body
    text = unescape(html)  # (the page escapes quotes: the script's source must not be there even as text)
    assert "alert('js')" not in text and "alert('html')" not in text and "alert('md')" not in text
    # the page itself still works: the kit's template (no script at all: formulas are Unicode), plots, tables
    assert "Remarques sur votre rendu" in body and "<li>&lt;script&gt;" in body
    assert "<script" not in html
    assert f'src="data:image/png;base64,{png}"' in body
    assert '<h1 id="Ma-r%C3%A9ponse">' in body and "<em>important</em>" in body and "<td>1</td>" in body
    assert '<a href="https://pytorch.org">doc</a>' in body and "<b>gras</b>" in body
