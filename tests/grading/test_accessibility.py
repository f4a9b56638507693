"""tpkit.grading.accessibility.mark on crafted HTML, exact strings: what is inserted where, and that the
rest of the page is left byte for byte. That BeautifulSoup(mark(page)) prints what nbconvert's own pass
prints, on a real feedback page and a page of traps (script, comment, attribute text, unclosed
elements), is tested in tests/grading/test_feedback.py. One known difference: an output area that
already has a ``tabindex`` keeps it (nbconvert's pass would set it to 0; only HTML a notebook displays
could hold one)."""
import pytest

from tpkit.grading.accessibility import ALT_TEXT, mark

ALT = f' alt="{ALT_TEXT}"'


@pytest.mark.parametrize("page, expected", [
    ('<img src="a.png">', f'<img src="a.png"{ALT}>'),
    ("<IMG SRC=x>", f"<IMG SRC=x{ALT}>"),
    ('<img src="a.png"/>', f'<img src="a.png"{ALT}/>'),
    ('<img src="a.png" />', f'<img src="a.png" {ALT}/>'),
    ("<img src=a/>", f"<img src=a/{ALT}>"),  # the slash belongs to the unquoted value
    ('<img\nsrc="a.png"\r\n>', f'<img\nsrc="a.png"\r\n{ALT}>'),
    ("é€\n<p>ligne</p>\n<img>", f"é€\n<p>ligne</p>\n<img{ALT}>"),  # offsets count characters, lines
])
def test_an_image_without_alt_gets_nbconvert_s_text_just_before_the_tag_closes(page, expected):
    assert mark(page) == expected


@pytest.mark.parametrize("page", [
    '<img src="a.png" alt="">', "<img alt src=x>", '<p title="<img src=x>">t</p>',
    "<!-- <img src=z> -->", '<script>s = "<img src=y>"</script>',
    '<div class="jp-OutputArea-output">hors du notebook</div>', "",
])
def test_a_page_with_nothing_to_add_is_returned_unchanged(page):
    assert mark(page) is page


def test_cells_of_the_notebook_become_focusable_and_nothing_else_moves():
    page = ('<body class="jp-Notebook"><div class="jp-Cell jp-Cell-inputWrapper" id=a>code</div>\n'
            '<div class="jp-OutputArea-output jp-RenderedText"><pre>x <span class="k">y</span>\n</pre></div>'
            '<span class="jp-OutputArea-output">pas un div</span>'
            '<div class="jp-OutputArea-output" tabindex="-1">déjà</div></body>')
    assert mark(page) == page.replace('id=a>', 'id=a tabindex="0">').replace(
        'jp-RenderedText">', 'jp-RenderedText" tabindex="0">')


def test_only_inside_the_notebook_element_and_until_it_closes():
    page = ('<div class="jp-OutputArea-output">avant</div><main class="jp-Notebook">'
            '<div class="jp-OutputArea-output">dedans</div></main><div class="jp-OutputArea-output">après</div>')
    assert mark(page).count('tabindex="0"') == 1 and '"jp-OutputArea-output" tabindex="0">dedans' in mark(page)


def test_highlighted_code_blanked_for_speed_keeps_every_offset():
    """A <pre> of text and spans is read blanked: the image after it still gets its text at the right place,
    and the code itself comes back as it was."""
    code = '<pre>é = <span class="mi">1</span>\n<span>&lt;img&gt;</span>\t€</pre>'
    page = f'<div class="jp-Notebook">{code}<img src="x.png"><pre><b>gras</b><img></pre></div>'
    assert mark(page) == (f'<div class="jp-Notebook">{code}<img src="x.png"{ALT}><pre><b>gras</b>'
                          f'<img{ALT}></pre></div>')


def test_a_large_page_is_marked_in_one_pass():
    cells = "".join(f'<div class="jp-Cell-inputWrapper"><pre>{"<span>x</span>" * 50}</pre></div><img src={i}.png>'
                    for i in range(2000))
    marked = mark(f'<div class="jp-Notebook">{cells}</div>')
    assert marked.count('tabindex="0"') == 2000 and marked.count(ALT) == 2000
