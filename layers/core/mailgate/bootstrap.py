"""The one place that wires adapters to the core, once per cold start.

`Container` holds every port, one typed field each. `from_settings` builds the real adapters
(DynamoDB, S3, EventBridge, SQS, Secrets Manager, SES/SMTP, IMAP/POP3, DNS); the in-memory fakes
(`mailgate_dev.fakes.in_memory`) live in the development package. Both take keyword arguments
that replace a port, which is how a test points one at a local server
(`mailboxes=NetMailboxes(cafile=...)`) or observes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import botocore.session

from .adapters import aws, dynamo
from .adapters.mailboxes import NetMailboxes
from .adapters.senders import Transports
from . import tokens
from .bounce_policy import DEFAULT_POLICY, BouncePolicy
from .errors import ConfigError
from .keyring import SecretKeyring
from .ports import (
    ConfigRepository, CounterRepository, EventPublisher, InboundStore, KeyValueRepository, MailboxFactory,
    MessageRepository, Outbox, Queue, RawMailStore, Resolver, ResolverFactory, SecretStore, SenderFactory,
    SigningKeys, TargetClients, ThreadRepository,
)
from .settings import Settings
from .tokens import TokenKeys

#: seconds per DNS query of the daily check (the system's resolvers answer well within it)
DNS_TIMEOUT = 3.0


@dataclass
class Container:
    settings: Settings
    raw_store: RawMailStore
    config: ConfigRepository
    threads: ThreadRepository
    messages: MessageRepository
    counters: CounterRepository
    kv: KeyValueRepository
    events: EventPublisher
    outbound_queue: Queue
    fetch_queue: Queue
    secrets: SecretStore
    #: the inbound path's batched read and single write
    inbound: InboundStore
    #: effects (events, queued messages) recorded with the outcome that causes them, until done
    outbox: Outbox
    #: DKIM keys for outbound mail
    signing_keys: SigningKeys
    #: SES, or an outgoing server's SMTP host
    transports: SenderFactory
    #: an incoming server's IMAP/POP3 mailbox
    mailboxes: MailboxFactory
    #: a fresh DNS resolver per check run
    resolvers: ResolverFactory
    #: the work queue of deliveries to the application's targets
    delivery_queue: Queue
    #: Odoo's external API and webhooks
    targets: TargetClients
    bounce_policy: BouncePolicy = DEFAULT_POLICY

    @property
    def token_key(self) -> TokenKeys:
        """The HMAC keys of reply and VERP tokens (the current one and, during its grace period,
        the one rotated out), read through the secret store, whose cache decides how soon a
        rotated key is in use (SECRETS_MAX_AGE_SECONDS for Secrets Manager)."""
        sid = self.settings.token_secret_id
        try:
            return tokens.parse_secret(self.secrets.get(sid))
        except ValueError as exc:
            raise ConfigError(f"the token-key secret {sid} is not usable ({exc}); rotate it with "
                              "`mailgate token rotate`", code="token-key-invalid") from None


def _system_resolver() -> Resolver:
    # Imported on first use: only the daily DNS check resolves names, and dnspython is a cold
    # start the other functions need not pay.
    from .adapters.dnspython import DnspythonResolver

    return DnspythonResolver.for_nameserver(None, timeout=DNS_TIMEOUT)


class _HttpTargets:
    """The TargetClients adapter, made on first use: only the delivery function and the CLI reach
    targets, and its module brings xmlrpc.client and http.client to every cold start."""

    def __init__(self) -> None:
        self._real: TargetClients | None = None

    def _get(self) -> TargetClients:
        if self._real is None:
            from .adapters.targets import HttpTargets

            self._real = HttpTargets()
        return self._real

    def deliver(self, target, secrets, delivery):
        return self._get().deliver(target, secrets, delivery)

    def test_connection(self, target, secrets):
        return self._get().test_connection(target, secrets)


_container: Container | None = None


def from_settings(settings: Settings, **ports) -> Container:
    """Real adapters: DynamoDB, S3, EventBridge, SQS, Secrets Manager, SES/SMTP, IMAP/POP3, DNS;
    a keyword argument replaces one (a test's CA file, an SES client, ...)."""
    # One botocore session for boto3's clients and pynamodb: service models load once.
    shared = botocore.session.get_session()
    session = aws.Clients(settings, shared)
    table = dynamo.bind_models(settings, shared)
    config = dynamo.DynamoConfigRepository(table)
    secrets = aws.SecretsManagerStore(session)
    given = dict(
        raw_store=aws.S3RawMailStore(session, settings.bucket_name), config=config,
        threads=dynamo.DynamoThreadRepository(table), messages=dynamo.DynamoMessageRepository(table),
        counters=dynamo.DynamoCounterRepository(table), kv=dynamo.DynamoKeyValueRepository(table),
        events=aws.EventBridgePublisher(session, settings.event_bus_name),
        outbound_queue=aws.SqsQueue(session, settings.outbound_queue_url),
        fetch_queue=aws.SqsQueue(session, settings.fetch_queue_url), secrets=secrets,
        # The inbound path resolves a route with one batched read and records it in one transaction.
        inbound=dynamo.DynamoInboundStore(config, gateway_domain=settings.gateway_domain),
        outbox=dynamo.DynamoOutbox(),
        signing_keys=SecretKeyring(secrets, settings),
        # SES's client comes from the same session, made when the first message goes through SES.
        transports=Transports(make_ses_client=lambda: session.client("sesv2"),
                              configuration_set=settings.ses_configuration_set),
        mailboxes=NetMailboxes(), resolvers=_system_resolver,
        delivery_queue=aws.SqsQueue(session, settings.delivery_queue_url), targets=_HttpTargets(),
    ) | ports
    return Container(settings=settings, **given)


def container() -> Container:
    """The process-wide container, built from the environment on first use (cold start)."""
    global _container
    if _container is None:
        _container = from_settings(Settings.from_env())
    return _container


def set_container(c: Container | None) -> None:
    """Used by the local stack and tests to install a container built elsewhere."""
    global _container
    _container = c
