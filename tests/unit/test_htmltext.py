"""HTML bodies as plain text: what routing, events and the bounce reader see."""

from __future__ import annotations

from mailgate.htmltext import html_to_text


def test_blocks_end_lines_cells_stay_apart_and_entities_are_decoded():
    html = ("<html><head><title>t</title><style>p {color: red}</style></head><body>"
            "<p>Hello <b>Ann</b> &amp; co</p><div>second</div>"
            "<table><tr><td>gone@x.example</td><td>550 5.1.1 unknown</td></tr></table>"
            "<script>alert(1)</script></body></html>")
    assert html_to_text(html) == "Hello Ann & co\nsecond\ngone@x.example 550 5.1.1 unknown"


def test_drop_quotes_cuts_at_the_quoted_message():
    html = '<div>Yes, fine.</div><div class="gmail_quote">On Mon, Ann wrote:<blockquote>old</blockquote></div>'
    assert html_to_text(html, drop_quotes=True) == "Yes, fine."
    assert "old" in html_to_text(html)


def test_an_unclosed_head_or_script_keeps_the_text_after_it():
    assert html_to_text("<head><p>body text</p>") == "body text"
    assert html_to_text("<script>x <p>after</p>") == "x after"


def test_many_unclosed_tags_and_blocks_are_read_in_one_pass():
    # Each of these once made the patterns rescan the rest of the text: quadratic time.
    hostile = "<script " * 20_000 + "<div class='x " * 20_000 + "<br " * 20_000 + "<" * 20_000 + " end"
    assert html_to_text(hostile, drop_quotes=True).endswith("end")
