"""Scale of the fetch dispatcher: the cost of one schedule tick against the number of mailboxes.

    .venv/bin/python bench/scale.py [--sizes 100,1000,10000,100000] [--emulator-max 1000]

N incoming servers are configured (80% fetched every 5 minutes, 20% hourly, 1% disabled), then
the dispatcher runs three ticks five minutes apart: tick 0 (everything due: a fresh deployment,
or the top of the hour), tick 1 and 2 (steady state: the 5-minute ones). For each tick it prints
the store requests and the items they read, the writes, the queue requests and the jobs queued,
and the time. Two dispatchers, in the same run:

  index       the dispatcher as it is (services/fetch/dispatch.py): the schedule index, the due
              entries only, conditional moves in parallel, SendMessageBatch
  per-server  the baseline: the dispatcher as it was before the index (every server read, then
              its last-dispatch item, then a write and a SendMessage per due server, one by one)

on the in-memory fakes (store calls counted at the ports) and on the AWS emulator (moto server,
every API call counted at botocore), the latter up to --emulator-max mailboxes (each of its
writes takes longer the larger the table: ~30 ms at 100 mailboxes, ~100 ms at 1,000, so a tick
there measures the emulator, not the dispatcher). The time of a tick on AWS is modelled from the
counts (modelled_seconds). docs/scale.md turns these figures into AWS capacity and cost.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import subprocess
import sys
import time
import uuid

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "layers" / "core"), str(REPO / "dev"), str(REPO)]

from mailgate.domain import IncomingServer, server_secret_id  # noqa: E402
from mailgate.services import fetch  # noqa: E402
from mailgate_dev import fakes  # noqa: E402

T0 = 1_800_000_000.0
TICKS = (0, 300, 600)
SLACK = 30


def servers(n: int) -> list[IncomingServer]:
    out = []
    for i in range(n):
        out.append(IncomingServer(name=f"box{i:06d}", protocol="imap" if i % 3 else "pop", host=f"mail{i % 50}.example.net",
                                  port=993, user=f"user{i}@example.net", secret_id=f"mailgate/server/box{i:06d}",
                                  interval_minutes=60 if i % 5 == 4 else 5, enabled=i % 100 != 99))
    return out


def dispatch_per_server(c, now: float) -> int:
    """The baseline: the dispatcher before the schedule index (as it stood in this repository),
    over the same ports."""
    sent = 0
    for server in c.config.list_incoming():
        if not server.enabled:
            continue
        key = "sched#" + server.name
        sched = c.kv.get_item(key) or {}
        interval = max(1, int(server.interval_minutes or 5)) * 60
        last = float(sched.get("last_dispatch") or 0)
        if last and now < last + interval - SLACK:
            continue
        version = int(sched.get("version") or 0)
        if not c.kv.put_item(key, {"last_dispatch": now, "version": version + 1}, if_version=version):
            continue
        c.fetch_queue.send({"server": server.name})
        sent += 1
    return sent


def dispatch_index(c, now: float) -> int:
    queued = fetch.dispatch(c, now=now)
    fetch.servers_disabled(c)  # the handler reports it on every run
    return queued


DISPATCHERS = {"index": dispatch_index, "per-server": dispatch_per_server}


# --------------------------------------------------------------------------- in memory


class Counted:
    """A port whose calls are counted: requests, items read, items written, messages queued."""

    READS = {"list_incoming", "due_incoming", "get_item", "get_incoming", "count_disabled_incoming", "get",
             "list_domains", "exists", "scan_prefix"}
    WRITES = {"put_item", "reschedule_incoming", "put_incoming", "delete_item", "put", "claim", "replace", "update",
              "publish"}

    def __init__(self, inner, tally: collections.Counter) -> None:
        self._inner, self._tally = inner, tally

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            result = attr(*args, **kwargs)
            self._count(name, args, result)
            return result

        return call

    def _count(self, name, args, result) -> None:
        t = self._tally
        if name in self.READS:
            t["read requests"] += 1
            t["items read"] += len(result) if isinstance(result, list) else (1 if result else 0)
        elif name in self.WRITES:
            t["writes"] += 1
        elif name == "send":
            t["queue requests"] += 1
            t["queued"] += 1
        elif name == "send_many":
            t["queue requests"] += (len(args[0]) + 9) // 10
            t["queued"] += len(args[0]) - len(result)


def memory_run(n: int, which: str) -> list[dict]:
    tally: collections.Counter = collections.Counter()
    c = fakes.in_memory()
    for s in servers(n):
        c.config.put_incoming(s)
    c.kv.put_item("fetchsched#index-v1", {"at": time.time()})  # saved with their entries: nothing to migrate
    c.config, c.kv, c.fetch_queue = Counted(c.config, tally), Counted(c.kv, tally), Counted(c.fetch_queue, tally)
    return _ticks(c, which, tally)


def _ticks(c, which: str, tally: collections.Counter) -> list[dict]:
    rows = []
    for offset in TICKS:
        tally.clear()
        t = time.perf_counter()
        queued = DISPATCHERS[which](c, T0 + offset)
        ms = (time.perf_counter() - t) * 1000
        rows.append({"tick": offset // 300, "jobs": queued, "ms": ms, **tally})
    return rows


def worker_job_costs() -> list[dict]:
    """What one fetch job costs the stores, counted at the ports: a mailbox with nothing new (the
    common case every five minutes), and one with one new message (routed to a new record)."""
    import logging

    from tests.unit.test_fetch_service import FakeImap, make_raw

    from mailgate.domain import Alias, AliasDomain
    from mailgate_dev.fakes import MemoryMailboxes

    logging.getLogger("mailgate").setLevel(logging.WARNING)  # the worker's line per run (Powertools set INFO)

    rows = []
    for label, new in (("nothing new", 0), ("one new message", 1)):
        box = FakeImap()
        c = fakes.in_memory(mailboxes=MemoryMailboxes({"box": box}))
        c.config.put_domain(AliasDomain(name="shop.example"))
        c.config.put_alias(Alias(domain="shop.example", name="sales", model="crm.lead"))
        c.config.put_incoming(IncomingServer(name="box", protocol="imap", host="h", port=993, user="u"))
        c.secrets.put(server_secret_id("mailgate/server/", "imap", "box"), "pw")
        first = fetch.run_job(c, {"server": "box"}, deadline=time.monotonic() + 60)  # the cursor exists: a steady mailbox
        assert first.status == "ok", first  # a job that failed would count a failure's calls, not a fetch's
        for i in range(new):
            box.add(make_raw(1000 + i).replace(b"To: ", b"To: sales@shop.example, ", 1))
        tally: collections.Counter = collections.Counter()
        for port in ("config", "kv", "messages", "raw_store", "secrets", "events", "fetch_queue", "outbound_queue"):
            setattr(c, port, Counted(getattr(c, port), tally))
        c.inbound = fakes.MemoryInboundStore(c.config, c.threads, c.messages, c.counters, c.kv, gateway_domain="x")
        counted = fetch.run_job(c, {"server": "box"}, deadline=time.monotonic() + 60)
        assert counted.status == "ok" and counted.ingested == new, counted
        rows.append({"job": label, **tally})
    return rows


# --------------------------------------------------------------------------- on the emulator


def start_emulator():
    from tests.fixtures._ports import free_port, wait_listening

    port = free_port()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    proc = subprocess.Popen([sys.executable, "-m", "mailgate_dev.local.motoserver", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wait_listening(port, timeout=30)
    return proc, f"http://127.0.0.1:{port}"


def emulator_container(endpoint: str):
    from mailgate import bootstrap
    from mailgate.settings import Settings
    from mailgate_dev.local import resources

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_ENDPOINT_URL": endpoint}.items():
        os.environ[k] = v
    names = resources.create_test_resources(endpoint, uuid.uuid4().hex[:10])
    settings = Settings(table_name=names["table"], bucket_name=names["bucket"], event_bus_name=names["bus"],
                        fetch_queue_url=names["fetch_queue_url"], outbound_queue_url=names["outbound_queue_url"],
                        endpoint_url=endpoint, region="us-east-1")
    return bootstrap.from_settings(settings)


def load(c, items: list[IncomingServer]) -> None:
    """The servers and their schedule entries as put_incoming writes them, 25 to a BatchWriteItem
    (put_incoming's transaction, one per server, is what the emulator is slowest at)."""
    from dataclasses import asdict

    from mailgate.adapters import dynamo

    with dynamo.Item.batch_write() as batch:
        for s in items:
            batch.save(dynamo.ServerItem(f"server#{s.name}", "server", gsi1pk="servers#in", gsi1sk=s.name,
                                         name=s.name, direction="in", data=json.loads(json.dumps(asdict(s)))))
            batch.save(dynamo._schedule_item(s.name, 0 if s.enabled else None, s.interval_minutes))
    c.kv.put_item("fetchsched#index-v1", {"at": time.time()})


def count_api_calls(tally: collections.Counter):
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def counted(self, operation, params):
        result = original(self, operation, params)
        service = self.meta.service_model.service_name
        if service == "dynamodb":
            if operation in ("Query", "Scan", "GetItem", "BatchGetItem"):
                tally["read requests"] += 1
                tally["items read"] += result.get("Count", 1 if result.get("Item") else 0)
                tally["read bytes"] += len(json.dumps(result.get("Items") or result.get("Item") or []))
            else:
                tally["writes"] += len(params.get("TransactItems", [])) or 1
        elif service == "sqs":
            tally["queue requests"] += 1
            tally["queued"] += len(params.get("Entries", [])) or 1
        return result

    BaseClient._make_api_call = counted
    return lambda: setattr(BaseClient, "_make_api_call", original)


def emulator_run(endpoint: str, n: int, which: str) -> list[dict]:
    c = emulator_container(endpoint)
    load(c, servers(n))
    tally: collections.Counter = collections.Counter()
    restore = count_api_calls(tally)
    try:
        return _ticks(c, which, tally)
    finally:
        restore()


# --------------------------------------------------------------------------- report

COLUMNS = ["mailboxes", "store", "dispatcher", "tick", "jobs", "read requests", "items read", "writes",
           "queue requests", "ms"]


def print_rows(rows: list[dict]) -> None:
    print("  ".join(f"{c:>14}" for c in COLUMNS))
    for r in rows:
        print("  ".join(f"{(f'{r.get(c, 0):.0f}' if isinstance(r.get(c, 0), float) else r.get(c, 0)):>14}"
                        for c in COLUMNS))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100,1000,10000,100000")
    p.add_argument("--emulator-max", type=int, default=1000,
                   help="largest size run on the emulator (0: none); its writes slow down with the table's size")
    p.add_argument("--baseline-max", type=int, default=100000, help="largest size the per-server baseline runs at")
    p.add_argument("--json", metavar="FILE", help="write the rows as JSON too")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    print(f"load average {os.getloadavg()[0]:.2f}; ticks at +0 (everything due), +5 min, +10 min")
    for n in sizes:
        for which in DISPATCHERS:
            if which == "per-server" and n > args.baseline_max:
                continue
            rows += [{"mailboxes": n, "store": "memory", "dispatcher": which, **r} for r in memory_run(n, which)]
    if args.emulator_max:
        proc, endpoint = start_emulator()
        try:
            for n in [s for s in sizes if s <= args.emulator_max]:
                for which in DISPATCHERS:
                    if which == "per-server" and n > args.baseline_max:
                        continue
                    rows += [{"mailboxes": n, "store": "emulator", "dispatcher": which, **r}
                             for r in emulator_run(endpoint, n, which)]
                    print(f"  (emulator, {n} mailboxes, {which}: done)", file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print_rows(rows)
    _ratios(rows)
    print("\none fetch job, counted at the ports (reads include secrets; writes include events published):")
    for r in worker_job_costs():
        print(f"  {r['job']:16} read requests {r.get('read requests', 0):3}  writes {r.get('writes', 0):3}  "
              f"queue requests {r.get('queue requests', 0)}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


#: a DynamoDB or SQS request from Lambda in the same region (single-digit milliseconds; the model's
#: assumption, not a measurement), and how many of the index dispatcher's writes are in flight at once
REQUEST_MS = 5.0
#: a Query page holds at most 1 MB; a schedule entry is ~150 bytes, a server item ~700 (measured above)
PAGE_ITEMS = {"index": 1_000_000 // 150, "per-server": 1_000_000 // 700}


def modelled_seconds(r: dict) -> float:
    """The tick's wall time on AWS, modelled from its counts: CPU time as measured, plus one
    request latency per request made one after another (the index dispatcher's writes and
    queue requests run CLAIM_CONCURRENCY at a time); reads of the in-memory store counted as the pages DynamoDB
    would return."""
    from mailgate.services.fetch.dispatch import CLAIM_CONCURRENCY

    pages = r.get("read requests", 0)
    if r["store"] == "memory":
        pages = max(pages, -(-r.get("items read", 0) // PAGE_ITEMS[r["dispatcher"]]))
    parallel = CLAIM_CONCURRENCY if r["dispatcher"] == "index" else 1
    requests = pages + (r.get("queue requests", 0) + r.get("writes", 0)) / parallel
    cpu = r["ms"] if r["store"] == "memory" else 0.0  # the emulator's time is its own, not AWS's
    return (cpu + requests * REQUEST_MS) / 1000


def _ratios(rows: list[dict]) -> None:
    """The steady-state tick per configured mailbox, and the modelled time of a tick on AWS."""
    print(f"\nsteady state (tick 1) per configured mailbox; modelled tick time on AWS at {REQUEST_MS:.0f} ms a request:")
    by = {(r["mailboxes"], r["store"], r["dispatcher"]): r for r in rows if r["tick"] == 1}
    for (n, store, which), r in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
        requests = r.get("read requests", 0) + r.get("writes", 0) + r.get("queue requests", 0)
        line = (f"  {store:8} {n:>7} {which:10} items read {r.get('items read', 0) / n:5.2f}  "
                f"requests {requests / n:5.2f}  measured {r['ms'] / n:8.3f} ms  modelled tick {modelled_seconds(r):8.1f} s")
        base = by.get((n, store, "per-server"))
        if base and which == "index":
            line += f"  (x{modelled_seconds(r) / modelled_seconds(base):.3f} of per-server)"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
