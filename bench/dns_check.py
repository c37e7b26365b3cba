"""Benchmark: one DNS check of a correctly published domain against the local authoritative server.

Prints queries per check and time per check, against a baseline measured in the same run: bare
dnspython lookups (dns.resolver, no cache, no checking) of exactly the names the check asked for.

    PYTHONPATH=$PWD/layers/core:$PWD/dev python bench/dns_check.py [--runs 50]
"""

from __future__ import annotations

import argparse
import statistics
import time

import dns.resolver
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailgate.adapters.dnspython import DnspythonResolver
from mailgate.dnsadvice import check_domain, make_plan, records_for_plan, zone_lines
from mailgate.domain import AliasDomain, OutgoingServer
from mailgate_dev.localdns import LocalDnsServer


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    plan = make_plan(AliasDomain("example.test"), [OutgoingServer("office", "smtp.office365.com", 587)],
                     region="eu-west-1", gateway_domain="gateway.test", dkim_keys={"gateway.test": pem})
    records = records_for_plan(plan, existing_spf="v=spf1 mx -all")
    with LocalDnsServer() as server:
        for zone in ("example.test", "gateway.test"):
            server.set_zone(zone, zone_lines([r for r in records if r.zone == zone]))
        server.set_zone("amazonses.com", '@ IN TXT "v=spf1 ip4:199.255.192.0/22 -all"')
        server.set_zone("spf.protection.outlook.com", '@ IN TXT "v=spf1 ip4:40.92.0.0/15 -all"')

        check_times, queries, asked = [], [], []
        for _ in range(args.runs):
            resolver = DnspythonResolver.for_nameserver(server.nameserver, timeout=2.0)
            t0 = time.perf_counter()
            report = check_domain(plan, resolver)
            check_times.append(time.perf_counter() - t0)
            queries.append(resolver.queries)
            asked = list(resolver.log)
            assert report.status == "ok", report.to_dict()
        distinct = len(set(asked))

        bare = dns.resolver.Resolver(configure=False)
        bare.nameservers, bare.port, bare.cache = [server.host], server.port, None
        base_times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            for name, rtype in asked:
                try:
                    bare.resolve(name, rtype, raise_on_no_answer=False)
                except dns.resolver.NXDOMAIN:
                    pass
            base_times.append(time.perf_counter() - t0)

    check_ms = statistics.median(check_times) * 1000
    base_ms = statistics.median(base_times) * 1000
    rows = [
        ("DNS queries per check", f"{statistics.mean(queries):.0f}", f"{len(asked)}", f"{distinct} distinct (name, type)"),
        ("median ms per check", f"{check_ms:.2f}", f"{base_ms:.2f}", f"ratio {check_ms / base_ms:.2f}x"),
        ("p95 ms per check", f"{sorted(check_times)[int(0.95 * len(check_times)) - 1] * 1000:.2f}",
         f"{sorted(base_times)[int(0.95 * len(base_times)) - 1] * 1000:.2f}", ""),
        ("max ms per check", f"{max(check_times) * 1000:.2f}", f"{max(base_times) * 1000:.2f}", ""),
    ]
    print(f"dns check of example.test against 127.0.0.1 ({args.runs} runs; baseline = bare dnspython lookups "
          "of the same names, no cache)")
    print(f"{'figure':<24}{'check':>10}{'baseline':>10}  note")
    for name, a, b, note in rows:
        print(f"{name:<24}{a:>10}{b:>10}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
