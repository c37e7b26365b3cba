"""DnspythonResolver: the `Resolver` port over dnspython, asking one nameserver (host[:port]) or
the system's.

It follows CNAME chains itself (an authoritative server hands back only the CNAME when its target
lives elsewhere) and caches each (name, type) once per run; every failure is an `Answer` with its
error kind, never an exception, so the checker turns every state of real DNS into a finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from ..dnsadvice.resolver import Answer, norm, parse_nameserver

MAX_CNAME_HOPS = 8


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
