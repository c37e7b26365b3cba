"""The DKIM keys outbound mail is signed with: the `ports.SigningKeys` of a stack, read from the
secret store and kept warm per container (so across warm invocations).

Secret `f"{dkim_secret_prefix}{domain}/{selector}"` holds a PKCS#8 PEM (RSA or Ed25519). The
domain's own key is preferred; else the gateway's shared key (`settings.gateway_domain`) is used
under the same selector, which the customer CNAMEs to the gateway. An Ed25519 key, where
configured, lives under selector `<selector>-ed25519` and adds a second signature (RFC 8463
recommends signing with both until Ed25519 verification is common).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from .errors import ConfigError, NotFound

if TYPE_CHECKING:
    from .dkim import SigningKey

KEY_CACHE_SECONDS = 900


def secret_id(settings, domain: str, selector: str) -> str:
    return f"{settings.dkim_secret_prefix}{domain.lower()}/{selector}"


def _load_private_key(pem: str) -> Any:
    # Imported on the first key read: dkimpy and cryptography cost ~70 ms of cold start, which
    # the functions that never sign (inbound, fetch, feedback, DNS check) do not pay.
    from .dkim import load_private_key

    return load_private_key(pem)


class KeyCache:
    """DKIM private keys read from the secret store, kept for `ttl` seconds (also 'not found')."""

    def __init__(self, secrets, *, ttl: float = KEY_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.secrets, self.ttl, self.clock = secrets, ttl, clock
        self._items: dict[str, tuple[float, Any]] = {}
        self.loads = 0

    def get(self, secret_id: str) -> Any:
        """The private key (a `cryptography` key object), or None when the secret does not exist."""
        hit = self._items.get(secret_id)
        if hit and hit[0] > self.clock():
            return hit[1]
        self.loads += 1
        try:
            key = _load_private_key(self.secrets.get(secret_id))
        except NotFound:
            key = None
        self._items[secret_id] = (self.clock() + self.ttl, key)
        return key


class SecretKeyring:
    """`ports.SigningKeys` over a `SecretStore`."""

    def __init__(self, secrets, settings, *, ttl: float = KEY_CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.secrets, self.settings = secrets, settings
        self.ttl, self.clock = ttl, clock
        self.cache = KeyCache(secrets, ttl=ttl, clock=clock)

    def forget(self) -> None:
        self.cache = KeyCache(self.secrets, ttl=self.ttl, clock=self.clock)

    def keys_for(self, domain: str, selector: str) -> list[SigningKey]:
        """RSA key (domain's own, else the gateway's shared one) and, where configured, Ed25519."""
        from .dkim import ED25519_SUFFIX, SigningKey  # loaded with the first key (see _load_private_key)

        gateway = (self.settings.gateway_domain or "").lower()
        owners = [domain.lower()] + ([gateway] if gateway else [])
        out = []
        for sel in (selector, selector + ED25519_SUFFIX):
            for owner in owners:
                sid = secret_id(self.settings, owner, sel)
                key = self.cache.get(sid)
                if key is not None:
                    out.append(SigningKey(domain.lower(), sel, key, sid))
                    break
        if not out or out[0].algorithm != "rsa-sha256":
            raise ConfigError(
                f"no DKIM key to sign mail from {domain}: run `mailgate dkim keygen {domain} --selector {selector}` "
                f"and publish the record it prints"
                + (f", or `mailgate dkim keygen {gateway} --selector {selector}` and CNAME "
                   f"{selector}._domainkey.{domain} to {selector}._domainkey.{gateway}"
                   if gateway and gateway != domain.lower() else ""),
                code="dkim-key-missing")
        return out
