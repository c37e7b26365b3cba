"""Messages per second through the local stack, and the AWS calls each message costs.

SMTP in (the SES-like listener stores the raw mail in S3 and invokes the inbound handler), routed
against DynamoDB, an event published: the whole inbound path, on the emulator over HTTPS. The AWS
calls are counted at botocore (every API call the handler makes, by operation). The baseline,
measured in the same run, is the emulator's own rate for one S3 PutObject — the one call that
SES receiving itself makes per message, so no inbound path can beat it here.

    python bench/local_stack.py [N]        (default 200 messages)
"""

from __future__ import annotations

import collections
import os
import smtplib
import sys
import tempfile
import time
from pathlib import Path

# the handlers run in this process: their logs and metrics would bury the figures
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dev"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "core"))


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    from mailgate_dev.local.stack import LocalStack, Ports, free_port

    state = Path(tempfile.mkdtemp(prefix="mailgate-bench-"))
    stack = LocalStack(state_dir=state, ports=Ports(aws=free_port(), smtp=free_port(), sink=free_port()),
                       fetch_every=3600, asynchronous=False)
    stack.start()
    try:
        c = stack.container()
        calls: collections.Counter[str] = collections.Counter()
        seconds: collections.Counter[str] = collections.Counter()
        # Count every AWS API call at botocore's one door, whichever client or thread makes it.
        from botocore.client import BaseClient

        original = BaseClient._make_api_call

        def counted(self, operation_name, api_params):
            op = f"{self.meta.service_model.service_name}.{operation_name}"
            calls[op] += 1
            t0 = time.perf_counter()
            try:
                return original(self, operation_name, api_params)
            finally:
                seconds[op] += time.perf_counter() - t0

        BaseClient._make_api_call = counted

        # warm-up: cold start of the handler, domain cache, clients
        with smtplib.SMTP("127.0.0.1", stack.ports.smtp) as smtp:
            smtp.sendmail("warm@client.test", ["sales@example.test"],
                          b"From: warm@client.test\r\nSubject: w\r\nMessage-ID: <warm@client.test>\r\n\r\nw\r\n")
        calls.clear()
        seconds.clear()

        t = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", stack.ports.smtp) as smtp:
            for i in range(n):
                sender = f"client{i}@client.test"
                raw = (f"From: Client {i} <{sender}>\r\nTo: sales@example.test\r\nSubject: Quote {i}\r\n"
                       f"Message-ID: <bench-{i}@client.test>\r\n\r\n" + "We need forty chairs for the new office.\r\n" * 80).encode()
                smtp.sendmail(sender, ["sales@example.test"], raw)
        elapsed = time.perf_counter() - t
        routed = [r for r in c.messages.list(limit=n + 10) if r.message_id.startswith("bench-")]
        assert len(routed) == n and all(r.outcome == "new-record" for r in routed), "not every message was routed"
        # The listener's own S3 PutObject (what SES does) is in the count: separate it out.
        handler_calls = {k: v for k, v in calls.items()}
        ses_puts = n
        handler_calls["s3.PutObject"] = handler_calls.get("s3.PutObject", 0) - ses_puts

        import boto3

        s3 = boto3.client("s3", endpoint_url=stack.endpoint, region_name="us-east-1")
        body = b"x" * 3300
        s3.put_object(Bucket=c.settings.bucket_name, Key="bench/warm", Body=body)
        t = time.perf_counter()
        for i in range(n):
            s3.put_object(Bucket=c.settings.bucket_name, Key=f"bench/{i}", Body=body)
        put_rate = n / (time.perf_counter() - t)
    finally:
        stack.stop()

    rate = n / elapsed
    print(f"messages: {n} of ~3.3 KB to sales@example.test, each a new record; load average {os.getloadavg()[0]:.2f}")
    print(f"{'run':<52}{'msg/s':>8}{'x baseline':>12}")
    print(f"{'baseline: emulator S3 PutObject alone':<52}{put_rate:>8.1f}{1.0:>12.2f}")
    print(f"{'SMTP in -> S3 -> inbound handler -> routed + event':<52}{rate:>8.1f}{rate / put_rate:>12.2f}")
    print("AWS calls per message made by the inbound handler (the S3 action's own PutObject excluded):")
    total = 0
    pollers = {"sqs.ReceiveMessage", "sqs.DeleteMessageBatch"}  # the local stack's queue pollers, not the handler
    for op, k in sorted(handler_calls.items()):
        if k and op not in pollers:
            print(f"  {op:<40}{k / n:>6.2f}   {seconds[op] / max(k, 1) * 1000:>6.1f} ms each")
            total += k
    # 4 (raw read, batched read, transaction, event) + the attempt marker (a killed routing is
    # recorded by the retry) + the outbox entry's settle (the effects are done): docs/inbound.md
    print(f"  {'total':<40}{total / n:>6.2f}   (goal <= 6 on the common path)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
