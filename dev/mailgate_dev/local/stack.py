"""The local stack (`mailgate dev`): the deployed world, on 127.0.0.1.

- the AWS API emulator (moto server) with template.yaml deployed into it;
- an SMTP listener that plays SES receiving and invokes the inbound handler;
- the fetch schedule and the SQS consumers (fetch worker, outbound) that Lambda would run;
- an SMTP sink that plays the customer's outgoing server, writing what it gets to .local/outbox;
- optionally (`imap=True`, `mailgate dev --imap`) a private Dovecot with a demo mailbox and an
  incoming server configured for it, and (`dns=True`) a local authoritative DNS server.

`consumers=False` leaves the SQS queues and the fetch schedule alone: the caller (the demo, a
test) processes them synchronously with `drain()`.

aiosmtpd, boto3 and dkimpy are imported by the part that uses them, so that importing this module
(for `free_port`, `Ports`) stays cheap.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from mailgate import bootstrap, settings
from mailgate.adapters.mailboxes import NetMailboxes
from mailgate.domain import Alias, AliasDomain, IncomingServer, OutgoingServer, server_secret_id
from mailgate.errors import ConfigError
from mailgate.settings import Settings

from ..localdns import LocalDnsServer
from ..stackinfo import STATE_FILE, settings_from_outputs
from . import invoker
from .deploy import deploy
from .dovecot import DovecotServer
from .net import free_port, port_free  # noqa: F401 - free_port is part of this module's API
from .ses_receiver import SES_MAX_BYTES, SesReceiver
from .sink import OutboxSink
from .tls import make_ca

log = logging.getLogger("mailgate.local")

DEMO_DOMAIN = "example.test"
STACK_NAME = "mailgate"
IMAP_SERVER = "local-imap"
IMAP_USER = "demo"
IMAP_PASSWORD = "demo-password"  # a local demo mailbox on 127.0.0.1 only


#: each SQS consumer's BatchSize, as its event source in template.yaml says (a test holds them equal)
BATCH_SIZES = {"outbound": 10, "fetch_worker": 1, "delivery": 1}


@dataclass
class Ports:
    aws: int = 4566
    smtp: int = 2525
    sink: int = 1025
    #: the HTTP API (0: any free port; `mailgate dev` asks for 3000, as `sam local start-api` does)
    api: int = 0


@dataclass
class LocalStack:
    state_dir: pathlib.Path = field(default_factory=lambda: pathlib.Path(".local"))
    ports: Ports = field(default_factory=Ports)
    fetch_every: float = 60.0
    gateway_domain: str = DEMO_DOMAIN
    seed: bool = True
    asynchronous: bool = True
    #: run the SQS pollers and the fetch schedule in threads (False: the caller drains the queues)
    consumers: bool = True
    #: a private Dovecot with the mailbox IMAP_USER and the incoming server IMAP_SERVER for it
    imap: bool = False
    #: a local authoritative DNS server (empty; load zones into `self.dns_server`)
    dns: bool = False
    #: seconds before a failed delivery is tried again (doubling); Lambda's default is 60
    delivery_first_retry: int = 60

    def __post_init__(self) -> None:
        self._moto: subprocess.Popen | None = None
        self._controllers: list[Any] = []
        self._threads: list[Any] = []
        self._stopping = threading.Event()
        self.outputs: dict[str, str] = {}
        self.settings: Settings | None = None
        self.receiver = None
        self.sink = None
        self.sqs = None
        self.dovecot = None
        self.dns_server = None
        self.api = None

    @property
    def endpoint(self) -> str:
        # HTTPS, as in AWS: the bucket policy denies requests without TLS (aws:SecureTransport).
        return f"https://127.0.0.1:{self.ports.aws}"

    # -- start ---------------------------------------------------------------------------------

    def start(self) -> "LocalStack":
        for what, port in (("the AWS emulator", self.ports.aws), ("the SES SMTP listener", self.ports.smtp),
                           ("the outbound SMTP sink", self.ports.sink), ("the HTTP API", self.ports.api)):
            if port and not port_free(port):
                raise ConfigError(f"port {port} for {what} is already in use: stop what listens there "
                                  "(another `mailgate dev`?) or choose other ports (see `mailgate dev --help`)")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_emulator()
            self._deploy()
            self._configure_process()
            if self.seed:
                self.seed_demo()
            self._start_smtp()
            if self.imap:
                self.start_imap()
            if self.dns:
                self.start_dns()
            self._start_consumers()
            self._start_api()
            self._write_state()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_emulator(self) -> None:
        self.tls = make_ca(self.state_dir / "tls")
        # Every AWS SDK client of this process (boto3, pynamodb) trusts the local CA.
        os.environ["AWS_CA_BUNDLE"] = str(self.tls.ca_file.resolve())
        env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION="us-east-1")
        env.pop("AWS_ENDPOINT_URL", None)
        with open(self.state_dir / "moto.log", "wb") as log_file:
            self._moto = subprocess.Popen(
                [sys.executable, "-m", "mailgate_dev.local.motoserver", "-H", "127.0.0.1", "-p", str(self.ports.aws),
                 "-c", str(self.tls.cert_file), "-k", str(self.tls.key_file)],
                stdout=log_file, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._moto.poll() is not None:
                raise ConfigError(f"the AWS emulator exited at start; see {self.state_dir / 'moto.log'}")
            try:
                socket.create_connection(("127.0.0.1", self.ports.aws), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise ConfigError("the AWS emulator did not start listening within 30 s")

    def _deploy(self) -> None:
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                          AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1")
        os.environ.pop("AWS_PROFILE", None)
        self.outputs = deploy(self.endpoint, stack_name=STACK_NAME,
                              parameters={"GatewayDomain": self.gateway_domain})

    def _configure_process(self) -> None:
        """Set the environment the handlers read at cold start, as template.yaml sets it in Lambda."""
        self.settings = settings_from_outputs(self.outputs, region="us-east-1", endpoint=self.endpoint,
                                              gateway_domain=self.gateway_domain)
        self.settings = replace(self.settings, delivery_first_retry=self.delivery_first_retry)
        st = self.settings
        os.environ.update({
            settings.AWS_ENDPOINT_URL: self.endpoint, settings.TABLE_NAME: st.table_name,
            settings.BUCKET_NAME: st.bucket_name, settings.EVENT_BUS_NAME: st.event_bus_name,
            settings.OUTBOUND_QUEUE_URL: st.outbound_queue_url, settings.FETCH_QUEUE_URL: st.fetch_queue_url,
            settings.GATEWAY_DOMAIN: st.gateway_domain, settings.CATCHALL_ALIAS: st.catchall_alias,
            settings.BOUNCE_ALIAS: st.bounce_alias, settings.TOKEN_SECRET_ID: st.token_secret_id,
            settings.DKIM_SECRET_PREFIX: st.dkim_secret_prefix,
            settings.SERVER_SECRET_PREFIX: st.server_secret_prefix,
            settings.SES_CONFIGURATION_SET: st.ses_configuration_set,
            settings.FEEDBACK_TOPIC_ARN: st.feedback_topic_arn,
            settings.DELIVERY_QUEUE_URL: st.delivery_queue_url,
            settings.TARGET_SECRET_PREFIX: st.target_secret_prefix,
            settings.DELIVERY_FIRST_RETRY: str(self.delivery_first_retry),
            "POWERTOOLS_SERVICE_NAME": "mailgate", "POWERTOOLS_METRICS_NAMESPACE": "mailgate",
            "POWERTOOLS_DEV": "false", "POWERTOOLS_TRACE_DISABLED": "true",
        })
        bootstrap.set_container(None)

    def container(self):
        return bootstrap.container()

    def seed_demo(self) -> None:
        """example.test with catchall@, bounce@, a sales@ alias, its DKIM key, and the SMTP sink
        as the outgoing server for it."""
        from mailgate import dkim, keyring

        c = self.container()
        domain = AliasDomain(self.gateway_domain)
        c.config.put_domain(domain)
        c.secrets.put(keyring.secret_id(c.settings, domain.name, domain.dkim_selector),
                      dkim.private_pem(dkim.generate_key("rsa", 2048)))
        c.config.put_alias(Alias(self.gateway_domain, "sales", "crm.lead", defaults={"team": "sales"}))
        c.config.put_outgoing(OutgoingServer("local-sink", "127.0.0.1", self.ports.sink, security="none",
                                             allow_plaintext=True, from_filter=self.gateway_domain, priority=1))

    def _start_smtp(self) -> None:
        from aiosmtpd.controller import Controller

        c = self.container()
        known = {d.name for d in c.config.list_domains()} | {self.gateway_domain}

        def accepts(address: str) -> bool:
            domain = address.rpartition("@")[2].lower()
            return domain in known or any(domain == d.name for d in c.config.list_domains())

        self.receiver = SesReceiver(
            prefix=self.settings.ses_raw_prefix, store=lambda key, raw: c.raw_store.put(key, raw), invoke=lambda ev: invoker.invoke("inbound", ev),
            accepts=accepts, function_arn=self.outputs.get("InboundFunctionArn",
                                                           "arn:aws:lambda:us-east-1:123456789012:function:mailgate-inbound"),
            asynchronous=self.asynchronous)
        ses = Controller(self.receiver, hostname="127.0.0.1", port=self.ports.smtp, data_size_limit=SES_MAX_BYTES,
                         server_hostname="inbound-smtp.local")
        ses.start()
        self._controllers.append(ses)
        self.sink = OutboxSink(self.state_dir / "outbox")
        sink = Controller(self.sink, hostname="127.0.0.1", port=self.ports.sink, server_hostname="sink.local")
        sink.start()
        self._controllers.append(sink)

    def _start_consumers(self) -> None:
        import boto3

        sqs = boto3.client("sqs", endpoint_url=self.endpoint, region_name="us-east-1")
        self.sqs = sqs
        if not self.consumers:
            return
        for url, function in ((self.settings.outbound_queue_url, "outbound"),
                              (self.settings.fetch_queue_url, "fetch_worker"),
                              (self.settings.delivery_queue_url, "delivery")):
            if url:
                poller = invoker.QueuePoller(sqs, url, function, batch_size=BATCH_SIZES[function])
                poller.start()
                self._threads.append(poller)

        def schedule() -> None:
            while not self._stopping.wait(self.fetch_every):
                # both schedules run every 5 minutes deployed: the fetch's, and the outbox sweep
                for function in ("fetch_dispatcher", "outbox_sweep"):
                    try:
                        invoker.invoke(function, invoker.scheduled_event())
                    except Exception:
                        log.exception("the %s failed", function)

        t = threading.Thread(target=schedule, name="fetch-schedule", daemon=True)
        t.start()
        self._threads.append(t)

    def _start_api(self) -> None:
        """The HTTP API on 127.0.0.1, checking API keys of the stack's usage plan and SigV4."""
        import boto3

        from .api import ApiKeys, LocalApi

        apigateway = boto3.client("apigateway", endpoint_url=self.endpoint, region_name="us-east-1")
        keys = ApiKeys(apigateway, self.outputs.get("ApiUsagePlanId", ""))
        self.api = LocalApi(lambda event: invoker.invoke("api", event), keys,
                            {os.environ["AWS_ACCESS_KEY_ID"]: os.environ["AWS_SECRET_ACCESS_KEY"]},
                            port=self.ports.api).start()

    def drain(self, function: str = "outbound") -> int:
        """Process what is in the outbound (or fetch_worker) queue now, in this thread, as Lambda's
        SQS poller would; returns how many queue messages were handled."""
        url = {"outbound": self.settings.outbound_queue_url, "fetch_worker": self.settings.fetch_queue_url,
               "delivery": self.settings.delivery_queue_url}[function]
        return invoker.drain(self.sqs, url, function)

    # -- optional parts ----------------------------------------------------------------------------

    def start_imap(self, *, password: str = IMAP_PASSWORD):
        """A private Dovecot under <state>/dovecot with the mailbox IMAP_USER, and the incoming
        server IMAP_SERVER (IMAPS, verified against Dovecot's CA) configured for it. Raises
        ConfigError, naming the apt command, when Dovecot is not installed."""
        if self.dovecot is None:
            self.dovecot = DovecotServer(self.state_dir / "dovecot").start()
            self.dovecot.add_user(IMAP_USER, password)
        c = self.container()
        server = IncomingServer(IMAP_SERVER, "imap", self.dovecot.host, self.dovecot.imaps_port, IMAP_USER,
                                security="ssl", secret_id=server_secret_id(c.settings.server_secret_prefix, "imap", IMAP_SERVER),
                                interval_minutes=1)
        c.secrets.put(server.secret_id, password)
        c.config.put_incoming(server)
        # The fetch worker of this process trusts Dovecot's CA (other processes: stack.json's fetch_cafile).
        c.mailboxes = NetMailboxes(cafile=str(self.dovecot.ca_file))
        return server

    def start_dns(self):
        if self.dns_server is None:
            self.dns_server = LocalDnsServer().start()
        return self.dns_server

    def _write_state(self) -> None:
        state = {"endpoint": self.endpoint, "ca_bundle": str(self.tls.ca_file.resolve()), "region": "us-east-1",
                 "outputs": dict(self.outputs, GatewayDomain=self.gateway_domain),
                 "ports": self.ports.__dict__, "pid": os.getpid(),
                 "api_url": self.api.url if self.api else ""}
        if getattr(self, "dovecot", None) is not None:
            # `mailgate fetch now` / `server test` from another terminal trust the local Dovecot's CA.
            state["fetch_cafile"] = str(pathlib.Path(self.dovecot.ca_file).resolve())
        (self.state_dir / STATE_FILE).write_text(json.dumps(state, indent=2))

    def describe(self) -> str:
        st = self.settings
        return "\n".join([
            "mailgate local stack is running:",
            f"  AWS emulator (moto)      {self.endpoint}   (stack {STACK_NAME!r} deployed from template.yaml)",
            f"  SES receiving (SMTP)     127.0.0.1:{self.ports.smtp}   mail for @{self.gateway_domain} -> "
            f"s3://{st.bucket_name}/raw/ses/ -> inbound handler",
            f"  outbound SMTP sink       127.0.0.1:{self.ports.sink}   writes to {self.state_dir / 'outbox'}/",
            f"  fetch schedule           every {self.fetch_every:.0f} s -> fetch dispatcher -> fetch worker; outbox sweep",
            f"  outbound queue consumer  {st.outbound_queue_url.rsplit('/', 1)[-1]} -> outbound handler",
            f"  delivery queue consumer  {st.delivery_queue_url.rsplit('/', 1)[-1]} -> delivery handler "
            "(Odoo / webhook targets: `mailgate target add-odoo|add-webhook`)",
            f"  HTTP API                 {self.api.url if self.api else '-'}/v1/...   (SigV4 with the local "
            "credentials testing/testing, and a key from `mailgate api-key add APP`)",
            f"  demo alias domain        {self.gateway_domain}: catchall@, bounce@, sales@ (crm.lead)",
            *self._describe_imap(),
            "Try: python -c \"import smtplib; smtplib.SMTP('127.0.0.1', %d).sendmail('you@client.test', "
            "['sales@%s'], b'Subject: hello\\r\\n\\r\\nHi')\"" % (self.ports.smtp, self.gateway_domain),
            "then `mailgate messages list`. Ctrl-C stops everything.",
        ])

    def _describe_imap(self) -> list[str]:
        dv = self.dovecot
        if dv is None:
            return []
        return [
            f"  private Dovecot (IMAP)   IMAPS {dv.host}:{dv.imaps_port}, IMAP+STARTTLS {dv.host}:{dv.imap_port}, "
            f"POP3S {dv.host}:{dv.pop3s_port}",
            f"                           user {IMAP_USER!r}, password {IMAP_PASSWORD!r} (local demo only), "
            f"CA {dv.ca_file}",
            f"                           incoming server {IMAP_SERVER!r} fetches it on each schedule tick "
            "(put mail in it with any IMAP client trusting the CA)",
            f"                           or now: `mailgate fetch now {IMAP_SERVER}` (it trusts this CA through .local/stack.json)",
        ]

    # -- stop ----------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()
        if self.api is not None:
            self.api.stop()
            self.api = None
        for t in self._threads:
            if hasattr(t, "stop"):
                t.stop()
        for c in self._controllers:
            try:
                c.stop()
            except Exception:
                pass
        if self.receiver:
            self.receiver.close()
        for t in self._threads:
            t.join(timeout=5)
        if self.dovecot is not None:
            self.dovecot.stop()
            self.dovecot = None
        if self.dns_server is not None:
            self.dns_server.stop()
            self.dns_server = None
        if self._moto and self._moto.poll() is None:
            self._moto.terminate()
            try:
                self._moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._moto.kill()
        try:
            (self.state_dir / STATE_FILE).unlink()
        except FileNotFoundError:
            pass
        bootstrap.set_container(None)

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
