"""Bodies are rendered once: Markdown to sanitised HTML and to plain text."""

from __future__ import annotations

from service.content.rendering import render


def test_markdown_becomes_html_with_lists_emphasis_and_safe_links() -> None:
    body = render("Some **bold** text and a [link](https://doi.org/10.1/x).\n\n- one\n- two\n")
    assert body.html == (
        '<p>Some <strong>bold</strong> text and a <a href="https://doi.org/10.1/x" '
        'rel="noopener noreferrer nofollow">link</a>.</p>\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>'
    )
    assert body.text == "Some bold text and a link.\n\n- one\n- two"


def test_raw_html_and_scripts_never_reach_the_output() -> None:
    body = render(
        'Hello <script>alert("x")</script> <img src=x onerror=alert(1)>\n\n'
        "<div onclick='steal()'>block html</div>\n\n[click](javascript:alert(1))\n"
    )
    for output in (body.html, body.text):
        assert "<script" not in output
        assert "<img" not in output
        assert "<div" not in output
        assert "javascript:" not in output.replace("[click](javascript:alert(1))", "")
    assert "&lt;script&gt;" in body.html  # shown as text, not run
    assert 'href="javascript' not in body.html


def test_plain_text_keeps_list_numbers_and_paragraphs() -> None:
    body = render("Intro line\ncontinues.\n\n3. third\n4. fourth\n\nEnd.")
    assert body.text == "Intro line continues.\n\n3. third\n4. fourth\n\nEnd."
