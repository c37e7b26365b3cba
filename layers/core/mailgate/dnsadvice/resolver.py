"""The DNS seam of the checker: `Resolver.query(name, rtype) -> Answer`, never an exception.

`Answer.error` is None or one of nxdomain / nodata / servfail / timeout / loop / error, so the
checker turns every state of real DNS into a finding. `DnspythonResolver` asks one nameserver
(host[:port]) or the system's, follows CNAME chains itself (an authoritative server hands back
only the CNAME when its target lives elsewhere), and caches each (name, type) once per run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

ERRORS = ("nxdomain", "nodata", "servfail", "timeout", "loop", "error")
MAX_CNAME_HOPS = 8


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


class Resolver(Protocol):
    """Look a name up; the result is cached for the resolver's life (one check run)."""

    queries: int

    def query(self, name: str, rtype: str) -> Answer: ...


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


@dataclass
class DnspythonResolver:
    """Queries over the wire with dnspython: UDP, then TCP when the answer is truncated.

    `nameservers` are (host, port) pairs, tried in order on timeout; None means the system's
    (/etc/resolv.conf). `timeout` is per attempt. `queries` counts messages actually sent.
    """

    nameservers: list[tuple[str, int]] | None = None
    timeout: float = 2.0
    attempts: int = 2  # per nameserver: one lost UDP datagram is not a finding
    queries: int = 0
    log: list[tuple[str, str]] = field(default_factory=list)
    _cache: dict[tuple[str, str], Answer] = field(default_factory=dict)
    _in_progress: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def for_nameserver(cls, nameserver: str | None, *, timeout: float = 2.0, attempts: int = 2) -> "DnspythonResolver":
        if not nameserver:
            return cls(None, timeout=timeout, attempts=attempts)
        return cls([parse_nameserver(nameserver)], timeout=timeout, attempts=attempts)

    def _servers(self) -> list[tuple[str, int]]:
        if self.nameservers is None:
            try:
                system = dns.resolver.Resolver()
                self.nameservers = [(ns, system.port) for ns in system.nameservers]
            except dns.exception.DNSException:
                self.nameservers = []
            if not self.nameservers:
                self.nameservers = [("127.0.0.1", 53)]
        return self.nameservers

    def query(self, name: str, rtype: str) -> Answer:
        key = (norm(name), rtype.upper())
        if key in self._cache:
            return self._cache[key]
        if key in self._in_progress:  # reached again while following its own CNAME chain
            return Answer(key[0], key[1], error="loop", detail=f"{key[0]} is part of a CNAME loop")
        self._in_progress.add(key)
        try:
            answer = self._lookup(*key)
        finally:
            self._in_progress.discard(key)
        self._cache[key] = answer
        return answer

    def _exchange(self, name: str, rtype: str) -> dns.message.Message | str:
        """One question to the first nameserver that answers; a str is the error kind."""
        try:
            request = dns.message.make_query(dns.name.from_text(name), dns.rdatatype.from_text(rtype))
        except dns.exception.DNSException as exc:  # a malformed name (label over 63 octets, ...)
            return f"error:{exc}"
        for host, port in self._servers():
            for _ in range(max(1, self.attempts)):
                self.queries += 1
                self.log.append((name, rtype))
                try:
                    response = dns.query.udp(request, host, port=port, timeout=self.timeout)
                    if response.flags & dns.flags.TC:  # RFC 7766: retry a truncated answer over TCP
                        response = dns.query.tcp(request, host, port=port, timeout=self.timeout)
                    return response
                except dns.exception.Timeout:
                    continue
                except (OSError, dns.exception.DNSException) as exc:
                    return f"error:{type(exc).__name__}: {exc}"
        return "timeout"

    def _lookup(self, name: str, rtype: str) -> Answer:
        response = self._exchange(name, rtype)
        if isinstance(response, str):
            kind, _, detail = response.partition(":")
            return Answer(name, rtype, error=kind, detail=detail)
        rcode = response.rcode()
        if rcode == dns.rcode.SERVFAIL:
            return Answer(name, rtype, error="servfail")
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return Answer(name, rtype, error="error", detail=dns.rcode.to_text(rcode))
        want = dns.rdatatype.from_text(rtype)
        # follow the CNAMEs inside this response (RFC 1034 4.3.2), then ask for the last target
        current = dns.name.from_text(name)
        chain: list[str] = []
        seen = {current}
        while True:
            rrset = _find(response.answer, current, want)
            if rrset is not None:
                return Answer(name, rtype, tuple(_rdata_text(r) for r in rrset), chain=tuple(chain))
            cname = _find(response.answer, current, dns.rdatatype.CNAME) if want != dns.rdatatype.CNAME else None
            if cname is None:
                break
            current = cname[0].target
            chain.append(norm(current.to_text()))
            if current in seen or len(chain) > MAX_CNAME_HOPS:
                return Answer(name, rtype, error="loop", chain=tuple(chain),
                              detail=f"CNAME chain {' -> '.join([name, *chain])} does not end")
            seen.add(current)
        if chain and rcode == dns.rcode.NOERROR and not _find(response.authority, None, dns.rdatatype.SOA, under=current):
            # the chain leaves the answering zone: look the target up (cached, loop-safe)
            target = self.query(norm(current.to_text()), rtype)
            return Answer(name, rtype, target.records, target.error,
                          chain=tuple(chain) + target.chain, detail=target.detail)
        if rcode == dns.rcode.NXDOMAIN:
            return Answer(name, rtype, error="nxdomain", chain=tuple(chain))
        return Answer(name, rtype, error="nodata", chain=tuple(chain))


def _find(section, name, rdtype, under=None):
    for rrset in section:
        if rrset.rdtype != rdtype:
            continue
        if name is not None and rrset.name != name:
            continue
        if under is not None and not under.is_subdomain(rrset.name):
            continue
        return rrset
    return None


def _rdata_text(rdata) -> str:
    if rdata.rdtype == dns.rdatatype.TXT:
        return b"".join(rdata.strings).decode("utf-8", "replace")
    if rdata.rdtype == dns.rdatatype.MX:
        return f"{rdata.preference} {norm(rdata.exchange.to_text())}"
    if rdata.rdtype in (dns.rdatatype.CNAME, dns.rdatatype.NS, dns.rdatatype.PTR):
        return norm(rdata.target.to_text())
    return rdata.to_text()
