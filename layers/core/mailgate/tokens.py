"""Signed tokens carried in local parts: reply tokens and VERP bounce tokens.

A reply address is `catchall+TOKEN@domain`; a bounce (envelope) address is `bounce+TOKEN@domain`.
The token carries an id, the id of the key that signed it, and an HMAC-SHA256 tag over both, so
it cannot be forged, altered or guessed without the key (kept in Secrets Manager):

    PAYLOAD.KID.TAG     e.g. catchall+k5xq3b7yzm2a4c6e.ab.mz3q7kx2c4v6b8n2@example.com

Everything is lower-case base32 (letters and 2-7) because some mail systems fold local parts to
lower case, and the whole local part must stay within the 64 characters RFC 5321 §4.5.3.1.1
allows (providers reject longer ones).

Keys rotate (`mailgate token rotate`): the secret names the current key, which signs, and at
most one previous key, which still verifies until its grace period ends, so reply addresses
already in circulation keep working. Tokens made before keys had ids (`PAYLOAD.TAG`) were signed
with the single key of a plain-text secret: that key is the "legacy" key and verifies them while
it is current or previous.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache

MAX_LOCAL_PART = 64
_TAG_CHARS = 16  # 80 bits of HMAC: far beyond guessing through a mail server
#: how long a rotated-out key still verifies, unless `rotate` is told otherwise
DEFAULT_GRACE_DAYS = 90
#: the id of the key of a plain-text secret, which signs tokens without a key id
LEGACY = ""
_LEGACY_NAME = "legacy"  # how the legacy key is named in the JSON secret
_KID = re.compile(r"[a-z2-7]{2}")
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class TokenKey:
    kid: str            # LEGACY ("") for the key of a plain-text secret
    secret: bytes
    until: float | None = None  # verifies until this time (None: while it is in the secret)


@dataclass(frozen=True)
class TokenKeys:
    """The key that signs new tokens and the one rotated out before it (if still in grace)."""

    current: TokenKey
    previous: TokenKey | None = None

    def verifier(self, kid: str, now: float | None = None) -> TokenKey | None:
        """The key that signed a token of key id `kid`, if it still verifies at `now`."""
        for key in (self.current, self.previous):
            if key is not None and key.kid == kid:
                if key.until is not None and (time.time() if now is None else now) > key.until:
                    return None
                return key
        return None

    def in_force(self, now: float | None = None) -> "TokenKeys":
        """These keys without a previous key whose grace period is over (a value to cache on)."""
        if self.previous is None or self.previous.until is None:
            return self
        if (time.time() if now is None else now) <= self.previous.until:
            return self
        return TokenKeys(self.current)

    def to_secret(self) -> str:
        """The secret's text: flat JSON, the shape CloudFormation's GenerateSecretString can make."""
        out: dict[str, object] = {"current": self.current.kid or _LEGACY_NAME,
                                  self.current.kid or _LEGACY_NAME: self.current.secret.decode()}
        if self.previous is not None:
            name = self.previous.kid or _LEGACY_NAME
            out.update({"previous": name, name: self.previous.secret.decode(),
                        "previous_until": int(self.previous.until or 0)})
        return json.dumps(out)


def as_keys(keys: TokenKeys | bytes) -> TokenKeys:
    """Bytes are one key without an id (tokens in the format before key ids)."""
    return keys if isinstance(keys, TokenKeys) else TokenKeys(TokenKey(LEGACY, bytes(keys)))


@lru_cache(maxsize=8)
def parse_secret(value: str) -> TokenKeys:
    """The keys a token-key secret holds: its JSON form, or a plain-text secret (one legacy key).
    ValueError when a JSON secret is not one mailgate wrote."""
    if not value.lstrip().startswith("{"):
        return TokenKeys(TokenKey(LEGACY, value.encode()))
    data = json.loads(value)
    if not isinstance(data, dict):
        raise ValueError("the token-key secret is JSON but not an object")
    current = _key_of(data, data.get("current"), None)
    previous = None
    if data.get("previous"):
        previous = _key_of(data, data["previous"], float(data.get("previous_until") or 0))
    return TokenKeys(current, previous)


def _key_of(data: dict, name: object, until: float | None) -> TokenKey:
    if not isinstance(name, str) or not (name == _LEGACY_NAME or _KID.fullmatch(name)):
        raise ValueError(f"the token-key secret names an invalid key id {name!r}")
    secret = data.get(name)
    if not isinstance(secret, str) or len(secret) < 16:
        raise ValueError(f"the token-key secret has no key (of 16 characters or more) for {name!r}")
    return TokenKey(LEGACY if name == _LEGACY_NAME else name, secret.encode(), until)


def _next_kid(*taken: str) -> str:
    """The key id after the newest one ("aa", "ab", ...), never one still in the secret."""
    n = 0
    for kid in taken:
        if kid:
            n = max(n, _B32.index(kid[0]) * 32 + _B32.index(kid[1]) + 1)
    while True:
        kid = _B32[(n // 32) % 32] + _B32[n % 32]
        if kid not in taken:
            return kid
        n += 1


def rotate(keys: TokenKeys, *, grace_days: float = DEFAULT_GRACE_DAYS, now: float | None = None) -> TokenKeys:
    """A new current key; the current one verifies for `grace_days` more; the previous one (if
    any) is dropped: two keys at most are ever valid at once."""
    now = time.time() if now is None else now
    kid = _next_kid(keys.current.kid, keys.previous.kid if keys.previous else "")
    fresh = TokenKey(kid, secrets.token_urlsafe(36).encode())
    old = TokenKey(keys.current.kid, keys.current.secret, now + grace_days * 86400)
    return TokenKeys(fresh, old)


# --------------------------------------------------------------------------- tokens


def _tag(key: TokenKey, purpose: str, payload: str) -> str:
    message = f"{purpose}:{payload}" if key.kid == LEGACY else f"{purpose}:{key.kid}:{payload}"
    mac = hmac.new(key.secret, message.encode(), hashlib.sha256).digest()
    return _b32(mac)[:_TAG_CHARS]


def _valid_payload(payload: str) -> bool:
    return bool(payload) and all(c.isalnum() or c == "-" for c in payload) and payload.isascii()


def make_token(keys: TokenKeys | bytes, purpose: str, payload: str) -> str:
    """`payload` is one or more ids joined by '-' (lower-case alphanumerics); signed with the
    current key."""
    payload = payload.lower()
    if not _valid_payload(payload):
        raise ValueError(f"token payload must be lower-case alphanumerics and '-': {payload!r}")
    key = as_keys(keys).current
    if key.kid == LEGACY:
        return f"{payload}.{_tag(key, purpose, payload)}"
    return f"{payload}.{key.kid}.{_tag(key, purpose, payload)}"


def check_token(keys: TokenKeys | bytes, purpose: str, token: str, *, now: float | None = None) -> str | None:
    """The payload of a genuine token signed by a key still valid, else None (never raises on
    hostile input)."""
    # hmac.compare_digest refuses non-ASCII str (TypeError): a mangled or forged tag in any
    # recipient must be "not genuine", never an error that fails the whole message.
    if not isinstance(token, str) or len(token) > MAX_LOCAL_PART or "." not in token or not token.isascii():
        return None
    parts = token.lower().split(".")
    if len(parts) == 2:
        (payload, tag), kid = parts, LEGACY
    elif len(parts) == 3 and _KID.fullmatch(parts[1]):
        payload, kid, tag = parts
    else:
        return None
    key = as_keys(keys).verifier(kid, now)
    if key is None or not _valid_payload(payload):
        return None
    if not hmac.compare_digest(tag.encode(), _tag(key, purpose, payload).encode()):
        return None
    return payload


def reply_address(keys: TokenKeys | bytes, catchall: str, domain: str, thread_id: str) -> str:
    local = f"{catchall}+{make_token(keys, 'reply', thread_id)}"
    if len(local) > MAX_LOCAL_PART:
        raise ValueError(f"reply local part is {len(local)} characters, over {MAX_LOCAL_PART}")
    return f"{local}@{domain}"


def verp_address(keys: TokenKeys | bytes, bounce: str, domain: str, message_ref: str, recipient_index: int) -> str:
    """Envelope sender naming the outbound message and which of its recipients (VERP)."""
    local = f"{bounce}+{make_token(keys, 'verp', f'{message_ref}-{recipient_index}')}"
    if len(local) > MAX_LOCAL_PART:
        raise ValueError(f"bounce local part is {len(local)} characters, over {MAX_LOCAL_PART}")
    return f"{local}@{domain}"


def split_local(address: str) -> tuple[str, str, str]:
    """'Catchall+Tok@Example.TEST' -> ('catchall', 'tok', 'example.test'); tag '' when none."""
    local, _, domain = address.strip().rpartition("@")
    base, _, tag = local.partition("+")
    return base.lower(), tag, domain.lower()


def parse_reply_address(keys: TokenKeys | bytes, address: str, *, now: float | None = None) -> str | None:
    """The thread id of a genuine reply address, else None."""
    _, tag, _ = split_local(address)
    return check_token(keys, "reply", tag, now=now) if tag else None


def parse_verp_address(keys: TokenKeys | bytes, address: str, *, now: float | None = None) -> tuple[str, int] | None:
    """(message_ref, recipient_index) of a genuine VERP address, else None."""
    _, tag, _ = split_local(address)
    payload = check_token(keys, "verp", tag, now=now) if tag else None
    if not payload:
        return None
    ref, _, index = payload.rpartition("-")
    if not ref or not index.isdigit():
        return None
    return ref, int(index)
