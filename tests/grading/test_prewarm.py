"""The workers' fork server pre-warms the caches every worker would otherwise fill again
(:func:`tpkit.grading.forkserver.prewarm`): a feedback page of a notebook the kernel executed then finds the
statement's code already highlighted."""
import json
import subprocess
import sys

from tpkit import paths

MAIN = "tp_reseaux_neurones"  # the course's main assignment

SCRIPT = r"""
import json, sys
import nbformat
from tpkit import assignments, paths
from tpkit.grading import fast_html, forkserver
forkserver.prewarm()
warm = fast_html._highlighted.cache_info()
nb = nbformat.read(str(paths.release_notebook(assignments.names()[0])), as_version=4)  # the page prewarm renders
nb.metadata["language_info"] = forkserver.kernel_language_info()  # what an executed notebook holds
from nbconvert.filters.highlight import Highlight2HTML  # noqa: F401  (nbconvert's own filter, memoized)
h = fast_html.MemoHighlight2HTML(pygments_lexer=nb.metadata["language_info"]["pygments_lexer"])
for cell in nb.cells:
    if cell.cell_type == "code":
        h(cell.source)
after = fast_html._highlighted.cache_info()
print(json.dumps({"warm": warm.currsize, "misses": after.misses - warm.misses, "hits": after.hits - warm.hits}))
"""


def test_the_statement_code_is_highlighted_once_for_the_whole_class():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True,
                         cwd=paths.ROOT)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["warm"] >= 20, got  # the statement's code cells, highlighted in the fork server
    assert got["misses"] == 0 and got["hits"] >= 20, got  # a worker's page: no cell highlighted again
