"""Addresses and message ids as bounce texts write them: in free text, in DSN fields, in headers.

Fields that hold an address (RFC 3464 Final-/Original-Recipient, RFC 5965 Original-Rcpt-To, SES
notification fields, address headers) go through the one address parser, `mime.addr_specs`;
free text (a notification's prose) is scanned with `ADDRESS`.
"""

from __future__ import annotations

import re
from typing import Any

from ..mime import MAX_ADDRESS_VALUE_CHARS, addr_spec, addr_specs

#: An addr-spec in running text (RFC 5322 §3.4.1 atext local part, RFC 1035 labels); quoted
#: local parts and address literals are not looked for.
ADDRESS = re.compile(
    r"(?<![\w.+=/-])([A-Za-z0-9!#$%&'*+/=?^_`{|}~][A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{0,63}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+)"
)
_ANGLE_ID = re.compile(r"<([^<>\s]+)>")
#: X.400 gateways (Exchange, Notes) write an Internet address as a typed attribute, "SMTP=a@b" or
#: "RFC-822=a@b" (RFC 2156 §4.2.1: the RFC 822 address inside an X.400 O/R address)
_X400_TYPE = re.compile(r"^(smtp|rfc-?822|internet)=", re.I)
#: RFC 3464 §2.3.2: "address-type ; generic-address" (rfc822 for Internet mail)
_ADDRESS_TYPE = re.compile(r"^\s*[A-Za-z0-9-]{1,20}\s*;")


def norm_address(address: str) -> str:
    """An address as found (in text or a field), without brackets, X.400 type prefix or case."""
    address = address.strip().strip("<>\"'[](),;:.").strip()
    if address.lower().startswith(("rfc822;", "rfc822 ;")):
        address = address.split(";", 1)[1].strip().strip("<>")
    return _X400_TYPE.sub("", address).lower()


def valid_address(address: str) -> bool:
    """An addr-spec whose local part is a dot-atom (RFC 5322 §3.4.1: no empty atom, so no ".." and
    no dot at either end: "david...@gmail.com" is a notice that shortened the address) or a
    quoted string."""
    local, _, domain = address.rpartition("@")
    if len(local) > 1 and local[0] == local[-1] == '"':
        return bool(domain) and len(address) <= 254   # a quoted local part may hold any dots
    return bool(local and domain) and ".." not in local and not local.startswith(".") \
        and not local.endswith(".") and len(address) <= 254


def field_address(value: Any) -> str:
    """The address of a field that holds one ("rfc822; a@b", "Name <a@b>", "a@b (comment)"), read
    by the address parser; "" when it holds none."""
    text = str(value or "")
    m = _ADDRESS_TYPE.match(text)
    if m:
        text = text[m.end():]
    address = _X400_TYPE.sub("", addr_spec(text))
    if not valid_address(address):
        found = all_addresses(text[:2000])
        address = found[0] if found else ""
    return address


def first_address(value: Any) -> str:
    """The first address of a header value (the address parser's, else the first in the text)."""
    address = _X400_TYPE.sub("", addr_spec(value))
    if valid_address(address):
        return address
    found = all_addresses(str(value or "")[:2000])
    return found[0] if found else ""


def all_addresses(value: Any) -> list[str]:
    """Every address in a text (a notification's prose, an unparseable field), in order."""
    found = (norm_address(m.group(1)) for m in ADDRESS.finditer(str(value or "")))
    return [a for a in found if valid_address(a)]


def header_addresses(values: list[str]) -> list[str]:
    """Addresses of header values (the address parser's; the addresses in the text where it finds none)."""
    found: list[str] = []
    for value in values:
        parsed = [a for a in (_X400_TYPE.sub("", x) for x in addr_specs(value)) if valid_address(a)]
        found += parsed or all_addresses(str(value)[:MAX_ADDRESS_VALUE_CHARS])
    return found


def clean_id(value: Any) -> str:
    """A Message-ID (or X-Mailgate-Id) without its angle brackets."""
    value = str(value or "").strip()
    m = _ANGLE_ID.search(value)
    return (m.group(1) if m else value.strip("<> ")).strip()[:998]
