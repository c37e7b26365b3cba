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

HANDLERS = ["inbound", "fetch_dispatcher", "fetch_worker", "outbound", "feedback", "dnscheck"]
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
bootstrap.container()  # what the first invocation builds: settings, adapters (clients are lazy)
print(time.perf_counter() - t)
"""

ENV = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",
           AWS_REGION="us-east-1", MAILGATE_TABLE="t", MAILGATE_BUCKET="b", POWERTOOLS_SERVICE_NAME="mailgate",
           PYTHONDONTWRITEBYTECODE="0")


def measure(code: str) -> float:
    times = []
    for _ in range(RUNS):
        out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"failed:\n{out.stderr}")
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main() -> int:
    measure(BASELINE)  # warm the file cache and .pyc files once
    base = measure(BASELINE)
    print(f"{'module':<28}{'median ms':>10}{'x baseline':>12}")
    print(f"{'import boto3 + 1 client':<28}{base * 1000:>10.1f}{1.0:>12.2f}")
    worst = 0.0
    for name in HANDLERS:
        measure(HANDLER.format(name=name))
        t = measure(HANDLER.format(name=name))
        worst = max(worst, t / base)
        print(f"{'entrypoints.' + name:<28}{t * 1000:>10.1f}{t / base:>12.2f}")
    print(f"worst ratio {worst:.2f} (goal <= 1.30)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
