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
    assert html_to_text("<script>x <p>after</p>") == "x\nafter"  # a paragraph starts a line


def test_many_unclosed_tags_and_blocks_are_read_in_one_pass():
    # Each of these once made the patterns rescan the rest of the text: quadratic time.
    hostile = "<script " * 20_000 + "<div class='x " * 20_000 + "<br " * 20_000 + "<" * 20_000 + " end"
    assert html_to_text(hostile, drop_quotes=True).endswith("end")


def test_block_structure_lists_and_preformatted_text():
    html = ("<p>Offer:</p><ul><li>40 chairs</li><li>2 tables</li></ul><ol><li>pay</li><li>ship</li></ol>"
            "<div>line one<br>line two<br><br>after a blank</div><pre>  a  b\n  c</pre><h2>Title</h2>tail")
    assert html_to_text(html) == ("Offer:\n- 40 chairs\n- 2 tables\n1. pay\n2. ship\nline one\nline two\n\n"
                                  "after a blank\n  a  b\n  c\nTitle\ntail")


def test_white_space_collapses_and_entities_decode():
    html = "<div>  Tom\n   &amp;\tAnna &lt;anna@x.example&gt;&nbsp;&euro;5 &#x263A; &#233;</div>"
    assert html_to_text(html) == "Tom & Anna <anna@x.example> \u20ac5 \u263a \u00e9"


def test_comments_doctype_conditional_comments_and_title_are_not_text():
    html = ("<!DOCTYPE html><html><head><title>Newsletter</title></head><!--[if mso]><xml>x</xml><![endif]-->"
            "<body>Hello<!-- hidden --> world<?xml version='1.0'?></body></html>")
    assert html_to_text(html) == "Hello world"


def test_a_less_than_sign_that_opens_no_tag_is_text():
    assert html_to_text("<p>3 < 4 and 5 <6</p>") == "3 < 4 and 5 <6"
    assert html_to_text("a <!-- never closed") == "a <!-- never closed"


def test_mark_quotes_prefixes_the_quoted_message_and_leaves_out_signatures():
    html = ('<div>Answer</div><div class="gmail_signature">Anna</div><div class="gmail_quote">On Mon, Tom wrote:'
            '<blockquote class="gmail_quote">old<br>older</blockquote></div>')
    assert html_to_text(html, mark_quotes=True) == "Answer\n> On Mon, Tom wrote:\n> old\n> older"
    assert html_to_text(html) == "Answer\nAnna\nOn Mon, Tom wrote:\nold\nolder"


def test_hostile_shapes_are_read_in_one_pass_with_bounded_output():
    # each shape once made a pattern rescan the rest of the text (quadratic) or grew the output
    shapes = ["<!--" + "x " * 100_000, "<!-- a " * 40_000, "<script>" + "x" * 200_000, "<head " * 40_000,
              "<div " * 40_000, "<div>" * 100_000, "<blockquote>" * 50_000 + "deep", "<" + "a" * 200_000,
              "<br>" * 200_000, "</p>" * 100_000, "<a href='" * 40_000, "<script>" * 40_000, "<!" * 100_000]
    for html in shapes:
        for mark in (False, True):
            text = html_to_text(html, mark_quotes=mark)
            assert len(text) <= len(html) and text.count("\n\n\n") == 0
    assert html_to_text("<blockquote>" * 50_000 + "deep").endswith("deep")
    assert html_to_text("<div " * 40_000 + "> end").endswith("end")
