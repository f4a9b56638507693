"""What rendering a feedback page costs, paid once per process (tpkit.grading.fast_html): highlighting
memoized, templates compiled once; the page is the same."""
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tpkit.grading import fast_html


def test_highlighting_is_memoized_across_execution_timestamps():
    """The same code in two pages is highlighted once, whatever the cells' execution timestamps."""
    highlight = fast_html.MemoHighlight2HTML(pygments_lexer="ipython3")
    fast_html._highlighted.cache_clear()
    first = highlight("x = 1", metadata={"execution": {"iopub.execute_input": "2026-11-30T08:00:00"}})
    second = highlight("x = 1", metadata={"execution": {"iopub.execute_input": "2026-11-30T09:00:00"}})
    assert first == second and fast_html._highlighted.cache_info().hits == 1
    magic = highlight("x = 1", metadata={"magics_language": "bash"})
    assert fast_html._highlighted.cache_info().misses == 2 and magic


def test_a_long_source_is_highlighted_without_being_memoized():
    highlight = fast_html.MemoHighlight2HTML(pygments_lexer="ipython3")
    fast_html._highlighted.cache_clear()
    source = "x = 1\n" * (fast_html.MEMO_MAX_CHARS // 6 + 1)
    assert "highlight" in highlight(source) and fast_html._highlighted.cache_info().currsize == 0


def test_templates_are_compiled_once_for_every_exporter_and_pages_stay_the_same():
    """A second exporter (each feedback converter makes its own) reuses the compiled templates and
    renders the same page."""
    nb = new_notebook(cells=[new_markdown_cell("# Titre"), new_code_cell("print(1)")],
                      metadata={"language_info": {"name": "python", "pygments_lexer": "ipython3"}})
    nbformat.validate(nb)
    store = fast_html.CachedHTMLExporter._bytecode_cache._store
    first, _ = fast_html.CachedHTMLExporter().from_notebook_node(nb)
    compiled = dict(store)
    assert compiled  # the templates of the first page
    second, _ = fast_html.CachedHTMLExporter().from_notebook_node(nb)
    assert second == first and store == compiled  # nothing compiled again
    assert 'alt="No description' not in first and "Titre" in first
