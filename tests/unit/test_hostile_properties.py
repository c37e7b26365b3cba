"""The hostile shapes of bench/hostile.py (built by tests/hostile.py) at small sizes, with a few
bytes of noise spliced into the body: whatever the shape, parse answers with the headers it could
read and well-typed fields, the bounce classifier with a well-formed report, reply text and HTML to
text with strings, and ingest records exactly one outcome. No timing here: the benchmark measures
time and memory."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mailgate import bounces, message as message_mod
from mailgate.routing import KINDS

from ..hostile import BY_NAME, ELISION_MARKER, FAMILIES, Family, expected
from .inbound_support import deliver, mail, stack

OUTCOMES = set(KINDS) | {"failed"}
# A handful of sizes per family and property: 47 families x 4 properties run in seconds.
few = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
families = pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)


@st.composite
def shapes(draw, family: Family) -> tuple[int, bytes]:
    """(n, raw): the family's message at a small n, sometimes with noise inside its body."""
    n = draw(st.integers(0, family.small))
    raw = family.message(n)
    noise = draw(st.binary(max_size=24))
    if noise:
        body = raw.find(b"\n\n") + 2  # after the top-level header block, which the test checks
        at = body + draw(st.integers(0, len(raw) - body))
        raw = raw[:at] + noise + raw[at:]
    return n, raw


def _type_ok(value, annotation: str) -> bool:
    """Checks the annotations ParsedMessage uses; an annotation not listed here is not checked."""
    checks = {
        "int": lambda v: isinstance(v, int),
        "str": lambda v: isinstance(v, str),
        "str | None": lambda v: v is None or isinstance(v, str),
        "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "dict[str, list[str]]": lambda v: isinstance(v, dict) and all(
            isinstance(k, str) and isinstance(x, list) and all(isinstance(y, str) for y in x) for k, x in v.items()),
    }
    check = checks.get(annotation if isinstance(annotation, str) else getattr(annotation, "__name__", ""))
    return check is None or check(value)


def assert_well_typed(parsed) -> None:
    for f in dataclasses.fields(parsed):
        if f.name.startswith("_"):
            continue
        value = getattr(parsed, f.name)
        assert _type_ok(value, f.type), f"{f.name} is {type(value).__name__}, declared {f.type}"
        # ParsedMessage's promise: every text field is decoded and on one line
        if f.name not in ("raw_headers", "defects"):
            for text in (value if isinstance(value, list) else [value]):
                assert not isinstance(text, str) or ("\n" not in text and "\r" not in text), (f.name, text[:80])
    assert isinstance(parsed.text, str) and isinstance(parsed.html, str)
    for att in parsed.attachments:
        assert isinstance(att.filename, str) and att.filename
        assert isinstance(att.content_type, str) and "/" in att.content_type
        assert isinstance(att.size, int) and att.size >= 0
        assert isinstance(att.inline, bool) and isinstance(att.content_id, str)
    json.dumps(parsed.summary())  # what `mailgate inspect --json` and the events carry


@families
@few
@given(data=st.data())
def test_parse_reads_the_headers_it_can_and_every_field_has_its_type(family, data):
    n, raw = data.draw(shapes(family))
    parsed = message_mod.parse(raw)
    assert parsed.raw_size == len(raw)
    for name, value in expected(family, n).items():
        assert getattr(parsed, name) == value, f"{name}: {getattr(parsed, name)!r}; defects {parsed.defects[:5]}"
    assert_well_typed(parsed)


@families
@few
@given(data=st.data())
def test_reply_text_and_html_to_text_return_text(family, data):
    _, raw = data.draw(shapes(family))
    parsed = message_mod.parse(raw)
    assert isinstance(parsed.reply_text, str)
    assert isinstance(message_mod.html_to_text(parsed.html), str)
    assert isinstance(message_mod.html_to_text(parsed.html, drop_quotes=True), str)
    # the whole message read as HTML: every shape is also a shape of HTML input
    assert isinstance(message_mod.html_to_text(raw.decode("utf-8", "replace")), str)
    for att in parsed.attachments:
        assert isinstance(att.data(), bytes)


@families
@few
@given(data=st.data())
def test_classify_answers_every_shape_with_a_well_formed_report(family, data):
    _, raw = data.draw(shapes(family))
    report = bounces.classify(raw)
    assert report.kind in bounces.KINDS
    assert isinstance(report.method, str) and isinstance(report.error, str)
    for r in report.recipients:
        assert isinstance(r.address, str) and isinstance(r.permanent, bool)
        assert isinstance(r.status, str) and isinstance(r.reason, str) and isinstance(r.action, str)
    json.dumps(report.to_dict())


@families
@few
@given(data=st.data())
def test_ingest_records_exactly_one_outcome(family, data):
    _, raw = data.draw(shapes(family))
    c = stack()
    rec = deliver(c, raw, recipients=family.recipients)
    assert rec.outcome in OUTCOMES, rec
    records = c.messages.list(limit=10)
    assert [r.key for r in records] == [rec.key]
    assert records[0].outcome == rec.outcome
    # an exception inside routing is caught and recorded, but it is a crash all the same
    assert not rec.reason.startswith("routing failed"), rec.reason


# --- failures seen in the field, at the sizes they were seen -----------------------------------


@pytest.mark.parametrize("name", ["nested-multipart", "nested-rfc822"])
def test_a_message_nested_a_thousand_deep_keeps_its_headers(name):
    """1,000 nested multiparts (or attached messages) hit RecursionError in the parser and lost
    every header: the message could no longer be deduplicated by its Message-ID nor answered."""
    family = BY_NAME[name]
    raw = family.message(1000)
    parsed = message_mod.parse(raw)
    for field_name, value in expected(family, 1000).items():
        got = getattr(parsed, field_name)
        assert got == value, f"{field_name}: {got!r}; {parsed.defects[:3]}"
    report = bounces.classify(raw)
    assert report.error == "", report.error
    rec = deliver(stack(), raw, recipients=family.recipients)
    assert rec.outcome == "new-record" and rec.message_id == expected(family, 1000)["message_id"], rec


def test_text_that_repeats_the_elision_marker_stays_as_written():
    """Text naming the parser's internal marker for an elided base64 run was replaced by a copy of
    that run for each mention: 28 KB of such text made one message need more than 1.5 GB."""
    family = BY_NAME["elision-marker"]
    n = 20
    raw = family.message(n)
    parsed = message_mod.parse(raw)
    mentions, chars = parsed.text.count(ELISION_MARKER + "0"), len(parsed.text)
    assert (mentions, chars < len(raw)) == (n, True), f"{mentions} mentions, {chars} characters of text"
    (att,) = parsed.attachments
    assert len(att.data()) == 800_000  # the real run is still read back in full


def test_a_non_ascii_reply_token_tag_in_cc_does_not_fail_the_message():
    """`hmac.compare_digest` raises TypeError on non-ASCII text: a forged or mangled reply address
    in Cc made a real order to sales@ be recorded 'failed' instead of opening its record."""
    c = stack()
    rec = deliver(c, mail(headers={"Cc": "catchall+abc.\u00e9t\u00e9@example.test"}))
    assert rec.outcome == "new-record", rec.reason
