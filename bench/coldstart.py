"""Cold start: import + initialisation time of each Lambda handler module, and the same with the
AWS clients its first invocation creates.

Each measurement runs in a fresh interpreter (as a Lambda cold start does), RUNS times, and the
median is reported beside the baseline `import boto3` + creating one client, measured the same way
in the same run. Two clocks: wall time, and the CPU time of the interpreter (time.process_time),
which a busy machine disturbs far less (quote it when the load average is high). Goal: no
handler above 1.3 times the baseline, clients included.

The clients are those of the common path's first invocation (CLIENTS): a message routed to a new
record or a thread, a fetch of a mailbox, a send through SES, an SES notification, a DNS check.
SQS is a client of inbound and of the fetch worker only when a route queues a notification or a
run its continuation.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

HANDLERS = ["inbound", "fetch_dispatcher", "fetch_worker", "outbound", "feedback", "dns_check"]
RUNS = int(os.environ.get("BENCH_RUNS", "7"))

BASELINE = """
import time; t, cpu = time.perf_counter(), time.process_time()
import boto3
boto3.client("s3", region_name="us-east-1")
print(time.perf_counter() - t, time.process_time() - cpu)
"""

HANDLER = """
import time; t, cpu = time.perf_counter(), time.process_time()
import importlib
m = importlib.import_module("mailgate.entrypoints.{name}")
from mailgate import bootstrap
c = bootstrap.container()  # settings and adapters; AWS clients are made on first use
init, init_cpu = time.perf_counter() - t, time.process_time() - cpu
clients = c.raw_store.clients
for service in {clients}:
    getattr(clients, service) if service != "sesv2" else clients.client("sesv2")
if "secretsmanager" in {clients}:
    getattr(c.secrets, "provider", None)  # a secrets cache made on the first read, where there is one
from mailgate.adapters import dynamo
dynamo.Item._get_connection().connection.client  # pynamodb (botocore) client
print(init, time.perf_counter() - t, init_cpu, time.process_time() - cpu)
"""

# The AWS clients the common path's first invocation creates (besides DynamoDB's).
CLIENTS = {"inbound": ["s3", "events", "secretsmanager"], "fetch_dispatcher": ["sqs"],
           "fetch_worker": ["s3", "events", "secretsmanager"],
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
    base, base_cpu = measure(BASELINE)
    print(f"runs per figure: {RUNS} fresh interpreters, median; load average {os.getloadavg()[0]:.2f}")
    print(f"{'':<28}{'----------- wall -----------':>36}{'----------- CPU ------------':>36}")
    print(f"{'module':<28}" + f"{'init ms':>9}{'x base':>8}{'+ clients':>11}{'x base':>8}" * 2)
    print(f"{'import boto3 + 1 client':<28}{base * 1000:>9.1f}{1.0:>8.2f}{'':>19}{base_cpu * 1000:>9.1f}{1.0:>8.2f}")
    worst = {"wall": 0.0, "cpu": 0.0}
    for name in HANDLERS:
        code = HANDLER.format(name=name, clients=CLIENTS[name])
        measure(code)
        init, full, init_cpu, full_cpu = measure(code)
        worst["wall"], worst["cpu"] = max(worst["wall"], full / base), max(worst["cpu"], full_cpu / base_cpu)
        print(f"{'entrypoints.' + name:<28}{init * 1000:>9.1f}{init / base:>8.2f}{full * 1000:>11.1f}{full / base:>8.2f}"
              f"{init_cpu * 1000:>9.1f}{init_cpu / base_cpu:>8.2f}{full_cpu * 1000:>11.1f}{full_cpu / base_cpu:>8.2f}")
    print(f"worst ratio with the clients of the first invocation: wall {worst['wall']:.2f}, CPU {worst['cpu']:.2f} "
          "(goal <= 1.30)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
