"""Student HTML made inert for the feedback page (tpkit.grading.safehtml): formatting, tables, links and
inline images stay; scripts, styles, handlers, remote or local images, the page's own look and anchors
do not; output metadata keeps only values that cannot break out of an attribute."""
from tpkit.grading import safehtml
from tpkit.grading.safehtml import safe_html


def test_safe_html_keeps_formatting_and_data_images_only():
    assert safe_html('<p>a<br>b</p><img src="data:image/png;base64,AAAA" alt="x">') == \
        '<p>a<br>b</p><img src="data:image/png;base64,AAAA" alt="x">'
    assert "src" not in safe_html('<img src="data:text/html;base64,PHNjcmlwdD4=">')
    assert "href" not in safe_html('<a href="data:text/html,<script>alert(1)</script>">x</a>')
    assert "href" not in safe_html('<a href=" java\tscript:alert(1)">x</a>')
    assert safe_html("<div style='position:fixed' onclick='x()'>t</div>") == "<div>t</div>"


def test_scripts_and_styles_go_with_their_content_and_a_dropped_image_says_so():
    assert safe_html("<p>a</p><script>alert('x')</script><style>p {display:none}</style>b") == "<p>a</p>b"
    shown = safe_html('<img src="https://example.org/x.png" alt="schéma">')
    assert "<img" not in shown and "image non affichée : schéma" in shown
    assert safe_html('<img src="/etc/passwd">').startswith("[image non affichée — ")


def test_the_page_s_look_and_anchors_cannot_be_borrowed():
    assert safe_html('<div class="alert alert-success">20/20</div>') == "<div>20/20</div>"
    assert safe_html('<span class="highlight k">x</span>') == '<span class="highlight k">x</span>'
    assert safe_html('<h2 id="scores">t</h2>') == "<h2>t</h2>" and safe_html('<h2 id="tpkit-x">t</h2>') == "<h2>t</h2>"
    assert safe_html('<h2 id="Ma-question">t</h2>') == '<h2 id="Ma-question">t</h2>'
    assert safe_html('<p id="Ma-question">t</p>') == "<p>t</p>"


def test_a_long_text_is_cleaned_the_same_without_being_memoized():
    text = "<p>x</p><script>y</script>" * (safehtml.MEMO_MAX_CHARS // 20)
    assert len(text) > safehtml.MEMO_MAX_CHARS
    before = safehtml._cleaned.cache_info().currsize
    assert safe_html(text) == "<p>x</p>" * (safehtml.MEMO_MAX_CHARS // 20)
    assert safehtml._cleaned.cache_info().currsize == before
    assert safe_html(text.encode()) == safe_html(text)  # bytes as UTF-8


def test_output_metadata_keeps_numbers_alt_text_and_flags_only():
    md = {"width": 300, "height": "100 onload=alert(1)", "alt": "courbe", "filenames": {"image/png": "/x"},
          "image/png": {"width": 2.5, "unconfined": True, "isolated": "yes", "style": "x"}, "tags": ["a"],
          "unconfined": False}
    assert safehtml.safe_output_metadata(md) == {"width": 300, "alt": "courbe",
                                                 "image/png": {"width": 2.5, "unconfined": True}}
    assert safehtml.safe_output_metadata(None) == {} and safehtml.safe_output_metadata({"width": True}) == {}
