"""What a function's cold start loads (bench/coldstart.py measures how long it takes): each in a
fresh interpreter, as Lambda starts one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ENV = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",
           MAILGATE_TABLE="t", MAILGATE_BUCKET="b", POWERTOOLS_SERVICE_NAME="mailgate")


def loaded_by(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         env=ENV, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


FIRST_INVOCATION = """
import importlib
importlib.import_module("mailgate.entrypoints.{name}")
from mailgate import bootstrap
c = bootstrap.container()
for service in ("s3", "events", "sqs", "secretsmanager"):
    getattr(c.raw_store.clients, service)
"""


@pytest.mark.parametrize("name", ["inbound", "fetch_dispatcher", "fetch_worker", "outbound", "feedback", "outbox_sweep",
                                  "delivery", "api"])
def test_a_cold_start_loads_no_dns_library_no_boto3_no_asyncio_and_only_the_event_classes_it_reads(name):
    modules = loaded_by(FIRST_INVOCATION.format(name=name))
    assert "dns" not in modules and "dns.resolver" not in modules  # signing and routing look nothing up
    assert "boto3" not in modules  # botocore makes the clients
    assert "asyncio" not in modules
    assert "xmlrpc.client" not in modules  # delivery targets load when a delivery is first made
    event_classes = {m.rpartition(".")[2] for m in modules if m.startswith("aws_lambda_powertools.utilities.data_classes.")}
    # Powertools' API Gateway resolver module imports the event classes of every HTTP front it serves
    http_fronts = {"api_gateway_proxy_event", "alb_event", "lambda_function_url_event", "vpc_lattice",
                   "bedrock_agent_event"} if name == "api" else set()
    assert event_classes <= {"common", "shared_functions", "sqs_event", "ses_event", "sns_event", "event_bridge_event",
                             "s3_event", "cloud_watch_logs_event"} | http_fronts, event_classes


def test_the_event_classes_package_still_gives_every_class_it_names():
    code = ("import mailgate.entrypoints\n"
            "from aws_lambda_powertools.utilities.data_classes import ALBEvent, SQSEvent, event_source\n"
            "import aws_lambda_powertools.utilities.data_classes as dc\n"
            "assert ALBEvent.__module__.endswith('alb_event') and callable(event_source) and 'S3Event' in dc.__all__")
    loaded_by(code)


def test_dkimpys_own_dns_lookup_loads_dnspython_when_first_used():
    code = ("import sys\n"
            "from mailgate import dkim as D\n"
            "assert 'dns.resolver' not in sys.modules\n"
            "import dns.resolver, dkim\n"
            "def nxdomain(*a, **k): raise dns.resolver.NXDOMAIN()\n"
            "dns.resolver.resolve = nxdomain\n"
            "assert dkim.dnsplug.get_txt(b'sel._domainkey.example.test') is None\n")
    assert "dkim" in loaded_by(code)
