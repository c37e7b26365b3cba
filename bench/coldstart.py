"""Cold start: import + initialisation time of each Lambda handler module.

Each measurement runs in a fresh interpreter (as a Lambda cold start does), five times, and the
median is reported beside the baseline `import boto3` + creating one client, measured the same way
in the same run. Goal (issue 2): no handler above 1.3 times the baseline.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

HANDLERS = ["inbound", "fetch_dispatcher", "fetch_worker", "outbound", "feedback", "dns_check"]
RUNS = int(os.environ.get("BENCH_RUNS", "7"))

BASELINE = """
import time; t = time.perf_counter()
import boto3
boto3.client("s3", region_name="us-east-1")
print(time.perf_counter() - t)
"""

HANDLER = """
import time; t = time.perf_counter()
import importlib
m = importlib.import_module("mailgate.entrypoints.{name}")
from mailgate import bootstrap
c = bootstrap.container()  # settings and adapters; AWS clients are made on first use
init = time.perf_counter() - t
clients = c.raw_store.clients
for service in {clients}:
    getattr(clients, service) if service != "sesv2" else clients.client("sesv2")
if "secretsmanager" in {clients}:
    getattr(c.secrets, "provider", None)  # Powertools Parameters' provider, made on the first read
from mailgate.adapters import dynamo
dynamo.Item._get_connection().connection.client  # pynamodb (botocore) client
print(init, time.perf_counter() - t)
"""

# The AWS clients each handler's first invocation creates (besides DynamoDB's).
CLIENTS = {"inbound": ["s3", "events", "sqs", "secretsmanager"], "fetch_dispatcher": ["sqs"],
           "fetch_worker": ["s3", "events", "sqs", "secretsmanager"],
           "outbound": ["s3", "events", "secretsmanager", "sesv2"], "feedback": ["events", "secretsmanager"],
           "dns_check": ["events", "secretsmanager"]}

ENV = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",
           AWS_REGION="us-east-1", MAILGATE_TABLE="t", MAILGATE_BUCKET="b", POWERTOOLS_SERVICE_NAME="mailgate",
           PYTHONDONTWRITEBYTECODE="0")


def measure(code: str) -> tuple[float, ...]:
    """Median of each figure the snippet prints, over RUNS fresh interpreters."""
    rows = []
    for _ in range(RUNS):
        out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"failed:\n{out.stderr}")
        rows.append([float(x) for x in out.stdout.strip().splitlines()[-1].split()])
    return tuple(statistics.median(col) for col in zip(*rows))


def main() -> int:
    measure(BASELINE)  # warm the file cache and .pyc files once
    (base,) = measure(BASELINE)
    print(f"runs per figure: {RUNS} fresh interpreters, median; load average {os.getloadavg()[0]:.2f}")
    print(f"{'module':<28}{'init ms':>9}{'x base':>8}{'+ its clients ms':>18}{'x base':>8}")
    print(f"{'import boto3 + 1 client':<28}{base * 1000:>9.1f}{1.0:>8.2f}")
    worst = worst_full = 0.0
    for name in HANDLERS:
        code = HANDLER.format(name=name, clients=CLIENTS[name])
        measure(code)
        init, full = measure(code)
        worst, worst_full = max(worst, init / base), max(worst_full, full / base)
        print(f"{'entrypoints.' + name:<28}{init * 1000:>9.1f}{init / base:>8.2f}{full * 1000:>18.1f}{full / base:>8.2f}")
    print(f"worst ratio: init {worst:.2f}, with the clients of the first invocation {worst_full:.2f} (goal <= 1.30)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
