"""Signed tokens carried in local parts: reply tokens and VERP bounce tokens.

A reply address is `catchall+TOKEN@domain`; a bounce (envelope) address is `bounce+TOKEN@domain`.
The token carries an id and an HMAC-SHA256 tag over it, so it cannot be forged, altered or
guessed without the key (kept in Secrets Manager). Everything is lower-case base32 because some
mail systems fold local parts to lower case, and the whole local part must stay within the
64 characters RFC 5321 §4.5.3.1.1 allows (providers reject longer ones).
"""

from __future__ import annotations

import base64
import hmac
import hashlib

MAX_LOCAL_PART = 64
_TAG_CHARS = 16  # 80 bits of HMAC: far beyond guessing through a mail server


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def _tag(key: bytes, purpose: str, payload: str) -> str:
    mac = hmac.new(key, f"{purpose}:{payload}".encode(), hashlib.sha256).digest()
    return _b32(mac)[:_TAG_CHARS]


def _valid_payload(payload: str) -> bool:
    return bool(payload) and all(c.isalnum() or c == "-" for c in payload) and payload.isascii()


def make_token(key: bytes, purpose: str, payload: str) -> str:
    """`payload` is one or more ids joined by '-' (lower-case alphanumerics)."""
    payload = payload.lower()
    if not _valid_payload(payload):
        raise ValueError(f"token payload must be lower-case alphanumerics and '-': {payload!r}")
    return f"{payload}.{_tag(key, purpose, payload)}"


def check_token(key: bytes, purpose: str, token: str) -> str | None:
    """The payload of a genuine token, else None (never raises on hostile input)."""
    # hmac.compare_digest refuses non-ASCII str (TypeError): a mangled or forged tag in any
    # recipient must be "not genuine", never an error that fails the whole message.
    if not isinstance(token, str) or len(token) > MAX_LOCAL_PART or "." not in token or not token.isascii():
        return None
    payload, _, tag = token.lower().rpartition(".")
    if not _valid_payload(payload):
        return None
    if not hmac.compare_digest(tag.encode(), _tag(key, purpose, payload).encode()):
        return None
    return payload


def reply_address(key: bytes, catchall: str, domain: str, thread_id: str) -> str:
    local = f"{catchall}+{make_token(key, 'reply', thread_id)}"
    if len(local) > MAX_LOCAL_PART:
        raise ValueError(f"reply local part is {len(local)} characters, over {MAX_LOCAL_PART}")
    return f"{local}@{domain}"


def verp_address(key: bytes, bounce: str, domain: str, message_ref: str, recipient_index: int) -> str:
    """Envelope sender naming the outbound message and which of its recipients (VERP)."""
    local = f"{bounce}+{make_token(key, 'verp', f'{message_ref}-{recipient_index}')}"
    if len(local) > MAX_LOCAL_PART:
        raise ValueError(f"bounce local part is {len(local)} characters, over {MAX_LOCAL_PART}")
    return f"{local}@{domain}"


def split_local(address: str) -> tuple[str, str, str]:
    """'Catchall+Tok@Example.TEST' -> ('catchall', 'tok', 'example.test'); tag '' when none."""
    local, _, domain = address.strip().rpartition("@")
    base, _, tag = local.partition("+")
    return base.lower(), tag, domain.lower()


def parse_reply_address(key: bytes, address: str) -> str | None:
    """The thread id of a genuine reply address, else None."""
    _, tag, _ = split_local(address)
    return check_token(key, "reply", tag) if tag else None


def parse_verp_address(key: bytes, address: str) -> tuple[str, int] | None:
    """(message_ref, recipient_index) of a genuine VERP address, else None."""
    _, tag, _ = split_local(address)
    payload = check_token(key, "verp", tag) if tag else None
    if not payload:
        return None
    ref, _, index = payload.rpartition("-")
    if not ref or not index.isdigit():
        return None
    return ref, int(index)
