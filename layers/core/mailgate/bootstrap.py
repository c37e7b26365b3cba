"""The one place that wires adapters to the core, once per cold start.

`Container` holds every port. `from_settings` builds the real AWS adapters (imported lazily so a
handler pays only for what it uses); the in-memory fakes live in the development package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .ports import (
    ConfigRepository, CounterRepository, EventPublisher, KeyValueRepository, MessageRepository,
    Queue, RawMailStore, SecretStore, ThreadRepository,
)
from .settings import Settings


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
    #: seams for network libraries; None means "the real one"
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def token_key(self) -> bytes:
        """The HMAC key for reply and VERP tokens, read through the secret store, whose cache
        decides how soon a rotated key is in use (SECRETS_MAX_AGE_SECONDS for Secrets Manager)."""
        return self.secrets.get(self.settings.token_secret_id).encode()


_container: Container | None = None


def from_settings(settings: Settings) -> Container:
    """Real adapters: DynamoDB, S3, EventBridge, SQS, Secrets Manager."""
    import botocore.session

    from .adapters import aws, dynamo

    # One botocore session for boto3's clients and pynamodb: service models load once.
    shared = botocore.session.get_session()
    session = aws.Clients(settings, shared)
    table = dynamo.bind_models(settings, shared)
    c = Container(
        settings=settings,
        raw_store=aws.S3RawMailStore(session, settings.bucket_name),
        config=dynamo.DynamoConfigRepository(table),
        threads=dynamo.DynamoThreadRepository(table),
        messages=dynamo.DynamoMessageRepository(table),
        counters=dynamo.DynamoCounterRepository(table),
        kv=dynamo.DynamoKeyValueRepository(table),
        events=aws.EventBridgePublisher(session, settings.event_bus_name),
        outbound_queue=aws.SqsQueue(session, settings.outbound_queue_url),
        fetch_queue=aws.SqsQueue(session, settings.fetch_queue_url),
        secrets=aws.SecretsManagerStore(session),
    )
    # The inbound path resolves a route with one batched read and records it in one transaction.
    c.extras["inbound_store"] = dynamo.DynamoInboundStore(c)
    return c


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
