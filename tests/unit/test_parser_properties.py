"""Our scanner against the standard library's parser on well-formed mail that hypothesis builds:
where the input is what the RFCs describe, both must read the same addresses, parts and bytes.
(The hostile shapes, where they must differ, are in test_hostile_properties and test_parse_bounds.)"""

from __future__ import annotations

import email
import email.policy
import email.utils
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from hypothesis import HealthCheck, example, given, settings, strategies as st

from mailgate.addresses import address_list
from mailgate.message import parse

some = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_atext = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
atoms = st.text(_atext, min_size=1, max_size=12)
labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
addresses = st.builds(lambda local, domain: f"{'.'.join(local)}@{'.'.join(domain)}",
                      st.lists(atoms, min_size=1, max_size=3), st.lists(labels, min_size=2, max_size=3))
names = st.one_of(st.just(""), st.text(_atext + " .,;:<>@()\"\\é", max_size=20).map(str.strip))


@some
@given(st.lists(st.tuples(names, addresses), min_size=1, max_size=6))
# white space inside a quoted display name is kept as written (RFC 5322 §3.2.4), between words one space
@example([('"  0', "0@0.0")])
@example([("x,  y", "a@b.example"), (" x ", "c@d.example")])
def test_address_lists_read_as_the_standard_library_reads_them(mailboxes):
    value = ", ".join(email.utils.formataddr(m) for m in mailboxes)
    ours = [(m.name, m.address) for m in address_list(value)]
    assert ours == [(name, addr) for name, addr in email.utils.getaddresses([value])], value
    assert [a for _, a in ours] == [a for _, a in mailboxes]


@some
@given(st.lists(addresses, min_size=1, max_size=4), atoms, st.sampled_from(["", " (Team)"]))
def test_groups_and_comments_are_read_as_the_standard_library_reads_them(members, group, comment):
    value = f"{group}: {', '.join(members)};, {members[0]}{comment}"
    assert [m.address for m in address_list(value)] == [a for _, a in email.utils.getaddresses([value])]


def _leaf(draw) -> MIMEBase:
    kind = draw(st.sampled_from(["text", "html", "binary", "qp"]))
    if kind == "binary":
        part = MIMEApplication(draw(st.binary(max_size=300)))
        if draw(st.booleans()):
            part.add_header("Content-Disposition", "attachment", filename=draw(st.text(_atext, min_size=1, max_size=12)))
        return part
    text = draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=200))
    charset = "utf-8" if kind != "qp" else "iso-8859-1"
    if kind == "qp":
        text = text.encode("latin-1", "replace").decode("latin-1")
    return MIMEText(text, "html" if kind == "html" else "plain", charset)


@st.composite
def trees(draw, depth: int = 0) -> MIMEBase:
    if depth >= 3 or not draw(st.booleans()):
        return _leaf(draw)
    root = MIMEMultipart(draw(st.sampled_from(["mixed", "alternative", "related"])))
    for _ in range(draw(st.integers(1, 4))):
        root.attach(draw(trees(depth + 1)))
    return root


@some
@given(trees())
def test_parts_and_their_bytes_are_those_the_standard_library_reads(tree):
    tree["From"], tree["Message-ID"] = "Ann <ann@customer.test>", "<p@customer.test>"
    raw = tree.as_bytes()
    theirs = [m for m in email.message_from_bytes(raw, policy=email.policy.compat32).walk() if not m.is_multipart()]
    ours = parse(raw).parts()
    assert [p.content_type for p in ours] == [m.get_content_type() for m in theirs]
    assert [p.data() for p in ours] == [m.get_payload(decode=True) for m in theirs]
    assert [p.filename for p in ours] == [m.get_filename() or m.get_param("name") or "" for m in theirs]
    assert [p.charset() for p in ours] == [m.get_content_charset() for m in theirs]
