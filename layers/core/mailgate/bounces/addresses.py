"""Addresses and message ids as bounce texts write them: in free text, in DSN fields, in headers."""

from __future__ import annotations

import email.utils
import re
from typing import Any

#: An addr-spec in running text (RFC 5322 §3.4.1 atext local part, RFC 1035 labels); quoted
#: local parts and address literals are not looked for.
ADDRESS = re.compile(
    r"(?<![\w.+=/-])([A-Za-z0-9!#$%&'*+/=?^_`{|}~][A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{0,63}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+)"
)
_ANGLE_ID = re.compile(r"<([^<>\s]+)>")


def norm_address(address: str) -> str:
    address = address.strip().strip("<>\"'[](),;:.").strip()
    if address.lower().startswith(("rfc822;", "rfc822 ;")):
        address = address.split(";", 1)[1].strip().strip("<>")
    return address.lower()


def first_address(value: Any) -> str:
    """The address of a header value (its RFC 5322 parse, else the first address in it)."""
    try:
        _, addr = email.utils.parseaddr(str(value or ""))
    except Exception:  # noqa: BLE001 - the address parser has had crashing inputs
        addr = ""
    if addr and "@" in addr:
        return norm_address(addr)
    m = ADDRESS.search(str(value or ""))
    return norm_address(m.group(1)) if m else ""


def all_addresses(value: Any) -> list[str]:
    return [norm_address(m.group(1)) for m in ADDRESS.finditer(str(value or ""))]


def header_addresses(values: list[str]) -> list[str]:
    """Addresses of header values (RFC 5322 parse; the addresses in the text where that finds none)."""
    found: list[str] = []
    for value in values:
        try:
            pairs = email.utils.getaddresses([str(value)])
        except Exception:  # noqa: BLE001
            pairs = []
        parsed = [norm_address(a) for _, a in pairs if "@" in a]
        found += parsed or all_addresses(value)
    return found


def clean_id(value: Any) -> str:
    """A Message-ID (or X-Mailgate-Id) without its angle brackets."""
    value = str(value or "").strip()
    m = _ANGLE_ID.search(value)
    return (m.group(1) if m else value.strip("<> ")).strip()[:998]
