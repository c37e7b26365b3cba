"""Cold start: import + initialisation time of each Lambda handler module, and the same with the
AWS clients its first invocation creates.

Each measurement runs in a fresh interpreter (as a Lambda cold start does), RUNS times, each
right after a run of the baseline `import boto3` + creating one client; the ratios are the
medians of those pairs' ratios, so that a load that comes and goes weighs on both alike. Two clocks: wall time, and the CPU time of the interpreter (time.process_time),
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

HANDLERS = ["inbound", "fetch_dispatcher", "fetch_worker", "outbound", "feedback", "dns_check", "outbox_sweep",
            "delivery", "api"]
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
           "dns_check": ["events", "secretsmanager"],
           # the sweep's usual run finds nothing pending: DynamoDB only
           "outbox_sweep": [],
           # a delivery reads the raw message and the target's secret, a retry moves the job's visibility;
           # the API presigns raw URLs and queues send requests
           "delivery": ["s3", "secretsmanager", "sqs"], "api": ["s3", "sqs"]}

ENV = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",
           AWS_REGION="us-east-1", MAILGATE_TABLE="t", MAILGATE_BUCKET="b", POWERTOOLS_SERVICE_NAME="mailgate")
# Bytecode is written and read, as the built layer ships it (scripts/compile-build.sh): any value
# of PYTHONDONTWRITEBYTECODE, "0" included, would have every edited module compiled on each run.
ENV.pop("PYTHONDONTWRITEBYTECODE", None)

#: what a cold start would compile if the layer shipped sources only (Lambda cannot write .pyc):
#: every module the handler and its first clients load from outside the standard library
COMPILE = HANDLER.replace("print(init,", "_ = (init,") + """
import sysconfig
std = sysconfig.get_paths()["stdlib"] + "/"
compile_s = 0.0
for m in list(sys.modules.values()):
    f = getattr(m, "__file__", None) or ""
    if f.endswith(".py") and (not f.startswith(std) or "site-packages" in f):
        src = open(f, "rb").read()
        t0 = time.perf_counter(); compile(src, f, "exec"); compile_s += time.perf_counter() - t0
print(compile_s)
"""


def run(code: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"failed:\n{out.stderr}")
    return [float(x) for x in out.stdout.strip().splitlines()[-1].split()]


def measure(code: str) -> tuple[list[float], list[float], list[float]]:
    """RUNS fresh interpreters of `code`, each right after one of the baseline, so that a load that
    comes and goes weighs on both alike: (the handler's medians, the baseline's medians, the median
    of the per-pair ratios for each of the handler's figures over the baseline's same clock)."""
    pairs = [(run(BASELINE), run(code)) for _ in range(RUNS)]
    handler = [statistics.median(col) for col in zip(*(h for _, h in pairs))]
    base = [statistics.median(col) for col in zip(*(b for b, _ in pairs))]
    # handler figures: init wall, full wall, init CPU, full CPU; baseline: wall, CPU
    ratios = [statistics.median(h[i] / b[0 if i < 2 else 1] for b, h in pairs) for i in range(4)]
    return handler, base, ratios


def main() -> int:
    run(BASELINE)  # warm the file cache and .pyc files once
    print(f"{RUNS} pairs of fresh interpreters per handler (baseline, handler), medians; the ratios are the "
          f"medians of the pairs' ratios; load average {os.getloadavg()[0]:.2f}")
    print(f"{'':<28}{'----------- wall -----------':>36}{'----------- CPU ------------':>36}")
    print(f"{'module':<28}" + f"{'init ms':>9}{'x base':>8}{'+ clients':>11}{'x base':>8}" * 2 + f"{'base ms':>9}")
    worst = {"wall": 0.0, "cpu": 0.0}
    for name in HANDLERS:
        code = HANDLER.format(name=name, clients=CLIENTS[name])
        run(code)
        (init, full, init_cpu, full_cpu), (base, base_cpu), r = measure(code)
        worst["wall"], worst["cpu"] = max(worst["wall"], r[1]), max(worst["cpu"], r[3])
        print(f"{'entrypoints.' + name:<28}{init * 1000:>9.1f}{r[0]:>8.2f}{full * 1000:>11.1f}{r[1]:>8.2f}"
              f"{init_cpu * 1000:>9.1f}{r[2]:>8.2f}{full_cpu * 1000:>11.1f}{r[3]:>8.2f}{base_cpu * 1000:>9.1f}")
    print(f"worst ratio with the clients of the first invocation: wall {worst['wall']:.2f}, CPU {worst['cpu']:.2f} "
          "(goal <= 1.30); base ms: the baseline's CPU time beside each (import boto3 + 1 client)")
    costs = {name: run("import sys\n" + COMPILE.format(name=name, clients=CLIENTS[name]))[0] for name in HANDLERS}
    print("compiling the same modules from source, as each cold start would with a layer of sources only "
          "(Lambda's /opt is read-only; `make build` ships the bytecode): "
          + ", ".join(f"{n} {ms * 1000:.0f} ms" for n, ms in costs.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
