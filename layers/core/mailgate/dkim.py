"""DKIM signing (RFC 6376) with dkimpy's logic and OpenSSL's arithmetic; key generation.

dkimpy does the DKIM work (header selection, relaxed canonicalization, body hash, tag list,
folding) but computes RSA in pure Python (~8 ms per signature). `FastDKIM` is a documented
subclass that keeps all of dkimpy's logic and replaces only the public-key step with
`cryptography` (OpenSSL, ~0.3 ms): `sign_with_key` is `dkim.DKIM.sign` without the PEM parsing,
and `gen_header` is `DomainSigner.gen_header` with `key.sign(digest)` in place of
`RSASSA_PKCS1_v1_5_sign` / PyNaCl. RSASSA-PKCS1-v1_5 and Ed25519 are deterministic, so the
tests check that FastDKIM's header is byte-for-byte the one stock dkimpy produces for the same
key and time, and that stock `dkim.verify` accepts it.

Keys: secret `f"{prefix}{domain}/{selector}"` holds a PKCS#8 PEM (RSA or Ed25519); `keyring`
finds the ones to sign with and keeps them warm.
"""

from __future__ import annotations

import base64
import importlib.machinery
import importlib.util
import sys
import time
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterable


def _dns_on_first_lookup() -> None:
    """dkimpy imports dnspython when it loads (`dkim.dnsplug`, the default DNS lookup of its
    verification); signing looks nothing up, and dnspython is ~27 ms of the outbound function's
    cold start. So `dkim.dnsplug` is registered first as a module whose `get_txt` loads the real
    one on its first call: verification with dkimpy's default lookup works as before."""
    if "dkim" in sys.modules or "dkim.dnsplug" in sys.modules:
        return
    stub = types.ModuleType("dkim.dnsplug")
    real: list[types.ModuleType] = []

    def get_txt(name, timeout=5):
        if not real:
            import dkim

            spec = importlib.machinery.PathFinder.find_spec("dkim.dnsplug", dkim.__path__)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            real.append(module)
        return real[0].get_txt(name, timeout=timeout)

    stub.get_txt, stub.__all__ = get_txt, ["get_txt"]
    sys.modules["dkim.dnsplug"] = stub


_dns_on_first_lookup()

import dkim as _dkimpy  # noqa: E402 - after dkim.dnsplug is registered

if not hasattr(_dkimpy, "dnsplug"):  # a submodule found in sys.modules is not set on its package
    _dkimpy.dnsplug = sys.modules["dkim.dnsplug"]
import dkim.canonicalization as _canon  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim import CanonicalizationPolicy, HashThrough, ParameterError, hash_headers, fold, RE_BTAG

from .errors import ConfigError

_RELAXED = _canon.Relaxed
ED25519_SUFFIX = "-ed25519"

#: Headers we sign when present (dkimpy's RFC 6376 §5.4.1 list plus ours).
SIGNED_HEADERS = tuple(h.decode() for h in _dkimpy.DKIM.SHOULD) + (
    "x-mailgate-id", "auto-submitted", "list-unsubscribe-post", "feedback-id",
)
#: Signed one extra time so nobody can add a second one (RFC 6376 §8.15 "over-signing").
OVERSIGNED = ("from", "subject", "reply-to", "to", "cc")
#: SES replaces Message-ID and Date when it sends (its documentation says not to sign them).
SES_UNSIGNABLE = ("message-id", "date")

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def algorithm_of(key: PrivateKey) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return b"rsa-sha256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return b"ed25519-sha256"
    raise ConfigError(f"unsupported DKIM key type {type(key).__name__}: use RSA (2048 bit) or Ed25519")


def canonicalize_body(policy, body: bytes) -> bytes:
    """dkimpy's body canonicalization, skipping its regexes when they cannot change anything.

    RFC 6376 §3.4.4 relaxed body: drop WSP before CRLF, shrink WSP runs to one SP, drop trailing
    empty lines. Without a tab, a double space or a space before CRLF the first two are no-ops
    (our quoted-printable bodies rarely have any), so only the last, cheap step runs. Checked
    against dkimpy's own function on generated input (tests/unit/test_outbound_dkim.py).
    """
    if policy.body_algorithm is _RELAXED and b"\t" not in body and b"  " not in body and b" \r\n" not in body:
        return _canon.correct_empty_body(_canon.strip_trailing_lines(body))
    return policy.canonicalize_body(body)


def canonicalize_headers(policy, headers):
    """dkimpy's header canonicalization (RFC 6376 §3.4.2), without regexes where they are no-ops."""
    if policy.header_algorithm is not _RELAXED:
        return policy.canonicalize_headers(headers)
    out = []
    for name, value in headers:
        if b"\n" in value or b"\t" in value or b"  " in value:
            value = _canon.compress_whitespace(_canon.unfold_header_value(value))
        out.append((name.lower().rstrip(), value.strip() + b"\r\n"))
    return out


class FastDKIM(_dkimpy.DKIM):
    """dkimpy's DKIM signer with the signature computed by `cryptography` (see module docstring)."""

    def sign_with_key(self, selector: bytes, domain: bytes, key: PrivateKey, *,
                      include_headers: Iterable[bytes] | None = None,
                      canonicalize=(b"relaxed", b"relaxed"), identity: bytes | None = None,
                      timestamp: int | None = None) -> bytes:
        """As `dkim.DKIM.sign` (dkimpy 1.1), with a `cryptography` private key instead of PEM bytes."""
        self.signature_algorithm = algorithm_of(key)
        canon_policy = CanonicalizationPolicy.from_c_value(b"/".join(canonicalize))
        if include_headers is None:
            include_headers = self.default_sign_headers()
        include_headers = tuple(x.lower() for x in include_headers)
        self.include_headers = include_headers
        if b"from" not in include_headers:
            raise ParameterError("The From header field MUST be signed")
        for x in set(include_headers).intersection(self.should_not_sign):
            raise ParameterError("The %s header field SHOULD NOT be signed" % x)
        body = canonicalize_body(canon_policy, self.body)
        self.hasher = _dkimpy.HASH_ALGORITHMS[self.signature_algorithm]
        bodyhash = base64.b64encode(self.hasher(body).digest())
        sigfields = [
            (b"v", b"1"),
            (b"a", self.signature_algorithm),
            (b"c", canon_policy.to_c_value()),
            (b"d", domain),
            (b"i", identity or b"@" + domain),
            (b"q", b"dns/txt"),
            (b"s", selector),
            (b"t", str(int(time.time() if timestamp is None else timestamp)).encode("ascii")),
            (b"h", b" : ".join(include_headers)),
            (b"bh", bodyhash),
            (b"b", b"0" * 60),
        ]
        res = self.gen_header(sigfields, include_headers, canon_policy, b"DKIM-Signature", key)
        self.domain, self.selector, self.signature_fields = domain, selector, dict(sigfields)
        return b"DKIM-Signature: " + res

    def gen_header(self, fields, include_headers, canon_policy, header_name, pk, standardize=False):
        """As `DomainSigner.gen_header` (dkimpy 1.1) for DKIM-Signature; `pk` is a cryptography key."""
        header_value = b"; ".join(b"=".join(x) for x in fields)
        header_value = fold(header_value, namelen=len(header_name), linesep=b"\r\n")
        header_value = RE_BTAG.sub(b"\\1", header_value)
        header = (header_name, b" " + header_value)
        h = HashThrough(self.hasher(), self.debug_content)
        sig = dict(fields)
        headers = canonicalize_headers(canon_policy, self.headers)
        self.signed_headers = hash_headers(h, canon_policy, headers, include_headers, header, sig)
        digest = h.digest()
        if isinstance(pk, rsa.RSAPrivateKey):
            # RSASSA-PKCS1-v1_5 over the SHA-256 of the canonical headers (RFC 6376 §3.3.1)
            signature = pk.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        else:
            # RFC 8463 §3: Ed25519 signs the SHA-256 hash itself (PureEdDSA over the digest)
            signature = pk.sign(digest)
        idx = [i for i in range(len(fields)) if fields[i][0] == b"b"][0]
        fields[idx] = (b"b", base64.b64encode(signature))
        header_value = b"; ".join(b"=".join(x) for x in fields) + self.linesep
        return fold(header_value, namelen=len(header_name), linesep=self.linesep)


@dataclass(frozen=True)
class SigningKey:
    domain: str          # d= : the From domain
    selector: str        # s=
    key: Any             # cryptography private key
    source: str = ""     # the secret id it came from (for the record; never the key)

    @property
    def algorithm(self) -> str:
        return algorithm_of(self.key).decode()


def headers_to_sign(header_names: Iterable[str], *, for_ses: bool = False) -> list[bytes]:
    present = [n.lower() for n in header_names]
    skip = set(SES_UNSIGNABLE) if for_ses else set()
    chosen = [n for n in present if n in SIGNED_HEADERS and n not in skip]
    return [n.encode() for n in chosen + [n for n in OVERSIGNED if n in chosen or n == "from"]]


def sign_message(raw: bytes, keys: list[SigningKey], *, for_ses: bool = False,
                 timestamp: int | None = None) -> bytes:
    """`raw` with one DKIM-Signature per key prepended (relaxed/relaxed, From over-signed)."""
    steps = sign_message_steps(raw, keys, for_ses=for_ses, timestamp=timestamp)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def sign_message_steps(raw: bytes, keys: list[SigningKey], *, for_ses: bool = False,
                       timestamp: int | None = None):
    """`sign_message` as a generator that yields between its parts (see adapters.smtp.Ahead)."""
    if not keys:
        return raw
    d = FastDKIM(raw)
    names = [name.decode("ascii", "replace") for name, _ in d.headers]
    include = headers_to_sign(names, for_ses=for_ses)
    sigs = []
    for k in keys:
        yield
        sigs.append(d.sign_with_key(k.selector.encode(), k.domain.encode(), k.key, include_headers=include,
                                    timestamp=timestamp))
    # the first key's signature ends up topmost (the one a verifier meets first)
    return b"".join(sigs) + raw


# --------------------------------------------------------------------------- keys


def load_private_key(pem: str | bytes) -> PrivateKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"the DKIM key is not a readable unencrypted PEM private key ({e}); "
                          "generate a new one with `mailgate dkim keygen DOMAIN`") from None
    algorithm_of(key)
    return key


def generate_key(kind: str = "rsa", bits: int = 2048) -> PrivateKey:
    if kind == "rsa":
        if bits < 1024:
            raise ValueError("RSA DKIM keys shorter than 1024 bits are refused by verifiers (RFC 8301)")
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {kind!r}: use rsa or ed25519")


def private_pem(key: PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_txt(key: PrivateKey) -> str:
    """The DKIM key record value (RFC 6376 §3.6.1; RFC 8463 §4 for Ed25519: the raw 32 bytes)."""
    pub = key.public_key()
    if isinstance(key, rsa.RSAPrivateKey):
        der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "v=DKIM1; k=ed25519; p=" + base64.b64encode(raw).decode()


def dns_record(domain: str, selector: str, key: PrivateKey) -> str:
    """A zone-file line; the value split into 255-byte strings (RFC 1035 §3.3.14 / RFC 6376 §3.6.2.2)."""
    value = public_txt(key)
    chunks = " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))
    return f"{selector}._domainkey.{domain.rstrip('.')}. 3600 IN TXT {chunks}"


def dnsfunc_for(records: dict[str, str]) -> Callable[..., bytes | None]:
    """A dkimpy `dnsfunc` answering from {"sel._domainkey.domain": "v=DKIM1; ..."} (tests, tools)."""
    table = {k.rstrip(".").lower(): v for k, v in records.items()}

    def lookup(name, timeout=5):
        key = (name.decode() if isinstance(name, bytes) else name).rstrip(".").lower()
        value = table.get(key)
        return value.encode() if value is not None else None

    return lookup


def dnsfunc_from_resolver(resolver) -> Callable[..., bytes | None]:
    """A dkimpy `dnsfunc` that asks a `ports.Resolver` (e.g. a DnspythonResolver pointed at one
    nameserver) for the key record. The record's character-strings are joined into one value
    (RFC 6376 §3.6.2.2); no record, or a failed lookup, gives None, which dkimpy reports as a
    missing key."""

    def lookup(name, timeout=5):
        answer = resolver.query(name.decode() if isinstance(name, bytes) else name, "TXT")
        return answer.records[0].encode() if answer.ok and answer.records else None

    return lookup
