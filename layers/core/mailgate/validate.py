"""Validation of names people type: domains, local parts, addresses, host names.

Each raises `InvalidInput` (a ValueError) with one clear line; the CLI reports it with exit
status 2.
"""

from __future__ import annotations

import re

from .errors import InvalidInput

# Matched with fullmatch: `$` also matches before a final newline, so "example\n.com" passed.
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# RFC 5322 dot-atom for local parts, without quoted strings (which no alias needs).
_LOCAL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def domain_name(value: str) -> str:
    name = (value or "").strip().rstrip(".").lower()
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(l) for l in labels):
        raise InvalidInput(f"{value!r} is not a domain name (like example.com)")
    return name


def local_part(value: str) -> str:
    local = (value or "").strip().lower()
    if not local or len(local) > 64 or not _LOCAL.fullmatch(local):
        raise InvalidInput(f"{value!r} is not a valid local part (the part before @)")
    return local


def address_parts(value: str) -> tuple[str, str]:
    local, at, domain = (value or "").strip().rpartition("@")
    if not at:
        raise InvalidInput(f"{value!r} is not an address (like sales@example.com)")
    return local_part(local), domain_name(domain)


def host_name(value: str) -> str:
    host = (value or "").strip().lower()
    if host in ("localhost",) or re.fullmatch(r"[0-9.]+|\[?[0-9a-f:]+\]?", host):
        return host.strip("[]")
    return domain_name(host) if "." in host else _raise(f"{value!r} is not a host name")


def _raise(message: str):
    raise InvalidInput(message)
