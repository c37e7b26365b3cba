"""The DNS seam of the checker: `Resolver.query(name, rtype) -> Answer`, never an exception.

`Answer.error` is None or one of nxdomain / nodata / servfail / timeout / loop / error, so the
checker turns every state of real DNS into a finding. The resolver itself is a port
(`ports.Resolver`); the real one, over dnspython, is `adapters.dnspython.DnspythonResolver`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ports import Resolver

__all__ = ["ERRORS", "Answer", "Resolver", "norm", "parse_nameserver"]

ERRORS = ("nxdomain", "nodata", "servfail", "timeout", "loop", "error")


@dataclass(frozen=True)
class Answer:
    """What one lookup found. `records` are strings: a TXT record's character-strings are joined
    into one (RFC 7208 3.3), MX is "PREF HOST", CNAME is the target; names are lower case without
    the final dot. `chain` lists the CNAME targets followed, in order."""

    name: str
    rtype: str
    records: tuple[str, ...] = ()
    error: str | None = None
    chain: tuple[str, ...] = ()
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def void(self) -> bool:
        """No answer (RFC 7208 4.6.4 counts these "void lookups")."""
        return self.error in ("nxdomain", "nodata")

    @property
    def final_name(self) -> str:
        return self.chain[-1] if self.chain else self.name

    def describe(self) -> str:
        """A short phrase for people: what the lookup gave."""
        via = "".join(f" -> CNAME {c}" for c in self.chain)
        where = f"{self.rtype} {self.name}{via}"
        if self.error is None:
            return f"{where}: {'; '.join(self.records)}"
        text = {
            "nxdomain": "the name does not exist (NXDOMAIN)",
            "nodata": f"the name exists but has no {self.rtype} record",
            "servfail": "the nameserver failed (SERVFAIL)",
            "timeout": "no answer from the nameserver (timeout)",
            "loop": "the CNAME chain loops",
            "error": "the lookup failed",
        }[self.error]
        return f"{where}: {text}" + (f" ({self.detail})" if self.detail else "")


def norm(name: str) -> str:
    """Lower case, no final dot, no surrounding whitespace: how names are compared here."""
    return name.strip().rstrip(".").lower()


def parse_nameserver(value: str) -> tuple[str, int]:
    """'HOST[:PORT]' or '[V6]:PORT' -> (host, port). Raises ValueError with the reason."""
    value = value.strip()
    if not value:
        raise ValueError("empty nameserver")
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "53"
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, "53"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port in nameserver {value!r}: expected HOST[:PORT] with PORT 1-65535")
    if not host:
        raise ValueError(f"no host in nameserver {value!r}")
    return host, int(port)
