"""A small authoritative DNS server on loopback, for tests and the local demo (not for production).

It answers from zone-file text parsed by dnspython, over UDP and TCP on the same port, and can be
told to never answer (a timeout) or to answer SERVFAIL for a name and everything under it. It
follows CNAME chains inside the zone of the question, as an authoritative server does (RFC 1034
4.3.2), leaving chains that leave the zone to the client; it logs every query so a test can
count them.

    python -m mailgate_dev.localdns --port 5353 example.test=zone.txt
    python -m mailgate_dev.localdns --port 5353 --records zones.txt   # "; zone NAME" blocks
"""

from __future__ import annotations

import socket
import socketserver
import textwrap
import threading
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from mailgate.dnsadvice.records import _quote_txt

DEFAULT_SOA = "@ 300 IN SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 300\n@ 300 IN NS ns.{origin}\n"


@dataclass(frozen=True)
class QueryLog:
    name: str
    rtype: str
    transport: str


class LocalDnsServer:
    """Serve zones on 127.0.0.1:port (port 0 picks a free one) until `stop()`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._requested_port = port
        self.port = 0
        self.zones: dict[dns.name.Name, dns.zone.Zone] = {}
        self.queries: list[QueryLog] = []
        self._blackholes: set[dns.name.Name] = set()
        self._servfails: set[dns.name.Name] = set()
        self._lock = threading.Lock()
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []

    # -- configuration -------------------------------------------------------------------------
    @property
    def nameserver(self) -> str:
        return f"{self.host}:{self.port}"

    def set_zone(self, origin: str, text: str) -> None:
        """Serve `text` (zone-file syntax, names relative to `origin` unless absolute) as the zone
        `origin`, replacing any zone of that name. The text is dedented; the default TTL is 300;
        a SOA and NS are added when the text has none."""
        origin_name = dns.name.from_text(origin)
        # dedent: a test's indented triple-quoted text would otherwise mean "same owner as above"
        text = "$TTL 300\n" + textwrap.dedent(text).strip("\n") + "\n"
        zone = dns.zone.from_text(text, origin=origin_name, relativize=False, check_origin=False)
        if zone.get_rdataset(origin_name, dns.rdatatype.SOA) is None:
            text = DEFAULT_SOA.format(origin=origin_name.to_text()) + text
            zone = dns.zone.from_text(text, origin=origin_name, relativize=False, check_origin=False)
        with self._lock:
            self.zones[origin_name] = zone

    @staticmethod
    def txt(value: str) -> str:
        """`value` as TXT rdata for zone text: quoted, split in 255-octet strings (RFC 1035 3.3.14),
        e.g. set_zone("example.test", f"sel._domainkey IN TXT {server.txt(dkim_record)}")."""
        return _quote_txt(value)

    def load(self, text: str) -> list[str]:
        """Serve every zone of a text in the form `mailgate dns records --zone` prints: blocks
        headed by a "; zone NAME" line. Returns the zone names."""
        zones = split_zones(text)
        for origin, body in zones.items():
            self.set_zone(origin, body)
        return list(zones)

    def blackhole(self, name: str) -> None:
        """Never answer queries for `name` or any name under it (the client times out)."""
        with self._lock:
            self._blackholes.add(dns.name.from_text(name))

    def servfail(self, name: str) -> None:
        """Answer SERVFAIL for `name` and any name under it."""
        with self._lock:
            self._servfails.add(dns.name.from_text(name))

    def reset(self) -> None:
        """Forget zones, blackholes, SERVFAILs and the query log (between tests)."""
        with self._lock:
            self.zones.clear()
            self._blackholes.clear()
            self._servfails.clear()
            self.queries.clear()

    def count(self, name: str | None = None, rtype: str | None = None) -> int:
        want = name.lower().rstrip(".") if name else None
        return sum(1 for q in list(self.queries)
                   if (want is None or q.name == want) and (rtype is None or q.rtype == rtype.upper()))

    # -- answering ----------------------------------------------------------------------------
    def _under(self, qname: dns.name.Name, names: set[dns.name.Name]) -> bool:
        return any(qname.is_subdomain(n) for n in names)

    def _zone_for(self, qname: dns.name.Name) -> dns.zone.Zone | None:
        best = None
        for origin, zone in self.zones.items():
            if qname.is_subdomain(origin) and (best is None or len(origin) > len(best.origin)):
                best = zone
        return best

    def answer(self, wire: bytes, transport: str) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return None
        q = query.question[0]
        self.queries.append(QueryLog(q.name.to_text(omit_final_dot=True).lower(),
                                     dns.rdatatype.to_text(q.rdtype), transport))
        with self._lock:
            if self._under(q.name, self._blackholes):
                return None
            response = dns.message.make_response(query)
            if self._under(q.name, self._servfails):
                response.set_rcode(dns.rcode.SERVFAIL)
            else:
                self._resolve_into(response, q.name, q.rdtype)
        max_size = 65535 if transport == "tcp" else max(512, query.payload if query.edns >= 0 else 512)
        try:
            return response.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            # RFC 1035 4.2.1: over UDP, answer what fits with TC set and let the client retry on TCP
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.TC
            return truncated.to_wire()

    def _resolve_into(self, response: dns.message.Message, qname: dns.name.Name, rdtype) -> None:
        seen: set[dns.name.Name] = set()
        name = qname
        first_zone = self._zone_for(qname)
        while True:
            zone = self._zone_for(name)
            if zone is None or zone is not first_zone:
                if name == qname:
                    response.set_rcode(dns.rcode.REFUSED)
                return  # a CNAME out of this zone: the client follows it
            response.flags |= dns.flags.AA
            node = zone.get_node(name)
            if node is None:
                # RFC 8020: NXDOMAIN only when nothing exists at or below the name
                below = any(n != name and n.is_subdomain(name) for n in zone.nodes)
                if not below:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                self._add_soa(response, zone)
                return
            if rdtype != dns.rdatatype.CNAME:
                cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
                if cname is not None:
                    response.answer.append(dns.rrset.from_rdata_list(name, cname.ttl, list(cname)))
                    seen.add(name)
                    name = cname[0].target
                    if name in seen or len(seen) > 16:
                        return  # a loop: hand back what we have, the client detects it
                    continue
            rds = node.get_rdataset(dns.rdataclass.IN, rdtype)
            if rds is None:
                self._add_soa(response, zone)  # NODATA (RFC 2308)
                return
            response.answer.append(dns.rrset.from_rdata_list(name, rds.ttl, list(rds)))
            return

    @staticmethod
    def _add_soa(response: dns.message.Message, zone: dns.zone.Zone) -> None:
        soa = zone.get_rdataset(zone.origin, dns.rdatatype.SOA)
        if soa is not None:
            response.authority.append(dns.rrset.from_rdata_list(zone.origin, soa.ttl, list(soa)))

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "LocalDnsServer":
        owner = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                reply = owner.answer(data, "udp")
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self):
                conn = self.request
                conn.settimeout(5)
                try:
                    while True:
                        head = _recv_exact(conn, 2)
                        if not head:
                            return
                        reply = owner.answer(_recv_exact(conn, int.from_bytes(head, "big")), "tcp")
                        if reply is None:
                            return
                        conn.sendall(len(reply).to_bytes(2, "big") + reply)
                except OSError:
                    return

        class UdpServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
            daemon_threads = True
            allow_reuse_address = True

        class TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

        last_error: OSError | None = None
        for _ in range(20):  # UDP and TCP on the same free port; retry if TCP's is taken
            udp = UdpServer((self.host, self._requested_port), Udp)
            port = udp.server_address[1]
            try:
                tcp = TcpServer((self.host, port), Tcp)
            except OSError as exc:
                udp.server_close()
                last_error = exc
                if self._requested_port:
                    raise
                continue
            break
        else:
            raise RuntimeError(f"no free port for UDP and TCP on {self.host}: {last_error}")
        self.port = port
        self._servers = [udp, tcp]
        for server in self._servers:
            t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                 name=f"dns-{type(server).__name__}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._servers, self._threads = [], []

    def __enter__(self) -> "LocalDnsServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def split_zones(text: str) -> dict[str, str]:
    """Split text with "; zone NAME" header lines into {NAME: zone text}."""
    zones: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("; zone "):
            current = zones.setdefault(line[len("; zone "):].strip(), [])
        elif current is not None:
            current.append(line)
    return {origin: "\n".join(lines) + "\n" for origin, lines in zones.items()}


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return b""
        buf += chunk
    return buf


def main(argv: list[str] | None = None) -> int:
    import argparse
    import pathlib
    import time

    parser = argparse.ArgumentParser(prog="python -m mailgate_dev.localdns",
                                     description="Serve zone files on 127.0.0.1 (tests and demo only).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--records", action="append", default=[], metavar="FILE",
                        help='zones in the form `mailgate dns records --zone` prints ("; zone NAME" blocks)')
    parser.add_argument("zones", nargs="*", metavar="ORIGIN=ZONEFILE")
    args = parser.parse_args(argv)
    if not args.zones and not args.records:
        parser.error("give ORIGIN=ZONEFILE or --records FILE")
    server = LocalDnsServer(port=args.port)
    for path in args.records:
        server.load(pathlib.Path(path).read_text())
    for spec in args.zones:
        origin, _, path = spec.partition("=")
        if not path:
            parser.error(f"{spec!r}: expected ORIGIN=ZONEFILE")
        server.set_zone(origin, pathlib.Path(path).read_text())
    server.start()
    print(f"serving {', '.join(z.to_text() for z in server.zones)} on {server.nameserver}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
