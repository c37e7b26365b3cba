"""The DNS seam of the checker: `Resolver.query(name, rtype) -> Answer`, never an exception.

`Answer.error` is None or one of nxdomain / nodata / servfail / timeout / loop / error, so the
checker turns every state of real DNS into a finding. The resolver and its answer are a port
(`ports.Resolver`, `ports.Answer`); the real resolver, over dnspython, is
`adapters.dnspython.DnspythonResolver`. Here: how names are compared and nameservers named.
"""

from __future__ import annotations

from ..ports import Answer, Resolver

__all__ = ["Answer", "Resolver", "norm", "parse_nameserver"]



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
