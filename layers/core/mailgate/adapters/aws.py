"""AWS adapters (botocore clients): S3 raw-mail store, EventBridge publisher, SQS queue, Secrets
Manager store.

The SDK honours AWS_ENDPOINT_URL itself, which is how the local stack points every call at the
emulator; `Clients` passes `settings.endpoint_url` explicitly too so a Settings object alone
decides. Clients are created lazily: a handler pays for the services it touches, not all of them.
"""

from __future__ import annotations

import logging
import time
from functools import cached_property
from typing import Any

from botocore.config import Config
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError

from .. import jsonfit
from ..effects import EVENT_SOURCE
from ..errors import NotFound, PermanentError, TransientError
from ..settings import Settings

log = logging.getLogger(__name__)

SOURCE = EVENT_SOURCE
_TRANSIENT_CODES = {"Throttling", "ThrottlingException", "ProvisionedThroughputExceededException",
                    "RequestLimitExceeded", "ServiceUnavailable", "InternalError", "InternalFailure",
                    "SlowDown", "RequestTimeout"}


class Clients:
    def __init__(self, settings: Settings, botocore_session=None) -> None:
        self.settings = settings
        self.botocore_session = botocore_session

    @cached_property
    def session(self):
        # botocore's session makes the clients: boto3's resource layer and S3 transfer
        # customisations are never used, and importing them is a cold start's cost
        import botocore.session

        return self.botocore_session or botocore.session.get_session()

    def client(self, service: str):
        return self.session.create_client(
            service, region_name=self.settings.region, endpoint_url=self.settings.endpoint_url,
            config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30),
        )

    @cached_property
    def s3(self):
        return self.client("s3")

    @cached_property
    def events(self):
        return self.client("events")

    @cached_property
    def sqs(self):
        return self.client("sqs")

    @cached_property
    def secretsmanager(self):
        return self.client("secretsmanager")


def _code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def translate(exc: Exception, what: str) -> Exception:
    """A botocore error as our own: throttling, server trouble and a service that cannot be reached
    (no connection, a timeout) are transient, the rest not."""
    code = _code(exc)
    if code in _TRANSIENT_CODES or code.startswith("5") or isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return TransientError(f"{what}: {code or exc}", code="aws-transient")
    return PermanentError(f"{what}: {code or exc}", code="aws-" + (code or "error").lower())


class S3RawMailStore:
    def __init__(self, clients: Clients, bucket: str) -> None:
        self.clients = clients
        self.bucket = bucket

    def put(self, key: str, data: bytes, *, content_type: str = "message/rfc822") -> None:
        try:
            self.clients.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except Exception as exc:
            raise translate(exc, f"storing s3://{self.bucket}/{key}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self.clients.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise NotFound(f"no raw message at s3://{self.bucket}/{key}") from exc
            raise translate(exc, f"reading s3://{self.bucket}/{key}") from exc

    def exists(self, key: str) -> bool:
        try:
            self.clients.s3.head_object(Bucket=self.bucket, Key=key)
            return True
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise translate(exc, f"checking s3://{self.bucket}/{key}") from exc

    def presigned_url(self, key: str, *, expires_seconds: int) -> str:
        # Signed locally with the function's credentials: no call to S3.
        try:
            return self.clients.s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=int(expires_seconds))
        except Exception as exc:
            raise translate(exc, f"signing a URL for s3://{self.bucket}/{key}") from exc


class EventBridgePublisher:
    def __init__(self, clients: Clients, bus: str) -> None:
        self.clients = clients
        self.bus = bus

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        body = jsonfit.dumps(detail)
        entry_size = len(SOURCE.encode()) + len(detail_type.encode()) + len(body.encode())
        if entry_size > jsonfit.EVENT_ENTRY_BYTES:
            # the services cut what they publish to fit (jsonfit.fit): this is a bug, and a
            # retry would be refused the same way
            raise PermanentError(f"event {detail_type!r} is {entry_size} bytes, over EventBridge's "
                                 f"{jsonfit.EVENT_ENTRY_BYTES}", code="event-too-large")
        entry = {"Source": SOURCE, "DetailType": detail_type, "EventBusName": self.bus, "Detail": body}
        try:
            result = self.clients.events.put_events(Entries=[entry])
        except Exception as exc:
            raise translate(exc, f"publishing {detail_type!r}") from exc
        if result.get("FailedEntryCount"):
            failed = result["Entries"][0]
            code = failed.get("ErrorCode") or ""
            what = f"EventBridge refused {detail_type!r}: {code} {failed.get('ErrorMessage')}"
            # per entry: throttling and internal failures pass, a malformed entry does not
            if code in _TRANSIENT_CODES or not code:
                raise TransientError(what, code="aws-transient")
            raise PermanentError(what, code="aws-" + code.lower())


class SqsQueue:
    def __init__(self, clients: Clients, url: str) -> None:
        self.clients = clients
        self.url = url

    def send(self, body: dict[str, Any], *, dedup_id: str | None = None) -> None:
        text = jsonfit.dumps(body)
        if len(text.encode()) > jsonfit.QUEUE_BODY_BYTES:
            raise PermanentError(f"queued message is {len(text.encode())} bytes, over SQS's "
                                 f"{jsonfit.QUEUE_BODY_BYTES}", code="message-too-large")
        try:
            self.clients.sqs.send_message(QueueUrl=self.url, MessageBody=text)
        except Exception as exc:
            raise translate(exc, "queueing a message") from exc

    def send_many(self, bodies: list[dict[str, Any]]) -> list[int]:
        """SendMessageBatch, ten entries per request (SQS's maximum); an entry SQS refused, or a
        request that failed as a whole, is reported by its index, never raised."""
        failed: list[int] = []
        for start in range(0, len(bodies), 10):
            entries = [{"Id": str(i), "MessageBody": jsonfit.dumps(bodies[i])}
                       for i in range(start, min(start + 10, len(bodies)))]
            try:
                answer = self.clients.sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
            except Exception as exc:  # noqa: BLE001 - the caller learns which bodies were not queued
                log.warning("SQS SendMessageBatch failed: %s", translate(exc, "queueing messages"))
                failed += [int(e["Id"]) for e in entries]
                continue
            failed += [int(f["Id"]) for f in answer.get("Failed", [])]
        return failed

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        try:
            self.clients.sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=receipt_handle,
                                                       VisibilityTimeout=max(0, min(int(seconds), 43_200)))
        except Exception as exc:
            raise translate(exc, "delaying a queued message") from exc


#: How long a warm function keeps a secret it read: a secret rotated or changed elsewhere is in
#: use everywhere within this time, and a busy function reads each secret once per period
#: instead of once per message.
SECRETS_MAX_AGE_SECONDS = 300


class SecretsManagerStore:
    """Secrets Manager. A read is kept for `max_age` seconds (a warm function reads each secret once
    per period, not once per message); writes (the CLI's) make this process read afresh.

    The cache is these few lines rather than Powertools Parameters' SecretsProvider: that one
    imports boto3 and every parameter provider at the first read, 12 ms of every cold start."""

    def __init__(self, clients: Clients, max_age: int = SECRETS_MAX_AGE_SECONDS, clock=time.monotonic) -> None:
        self.clients = clients
        self.max_age = max_age
        self.clock = clock
        self._cache: dict[str, tuple[float, str]] = {}

    def get(self, secret_id: str) -> str:
        kept = self._cache.get(secret_id)
        if kept is not None and self.clock() < kept[0]:
            return kept[1]
        try:
            answer = self.clients.secretsmanager.get_secret_value(SecretId=secret_id)
        except Exception as exc:
            if _code(exc) == "ResourceNotFoundException":
                raise NotFound(f"secret {secret_id!r} does not exist") from exc
            raise translate(exc, f"reading secret {secret_id!r}") from exc
        value = answer.get("SecretString")
        if not isinstance(value, str):
            raise PermanentError(f"secret {secret_id!r} holds binary data, not the text mailgate stores",
                                 code="aws-secret-binary")
        self._cache[secret_id] = (self.clock() + self.max_age, value)
        return value

    def put(self, secret_id: str, value: str) -> None:
        sm = self.clients.secretsmanager
        try:
            sm.put_secret_value(SecretId=secret_id, SecretString=value)
        except Exception as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise translate(exc, f"storing secret {secret_id!r}") from exc
            try:
                sm.create_secret(Name=secret_id, SecretString=value)
            except Exception as exc2:  # e.g. a name Secrets Manager refuses: one clear line, no traceback
                raise translate(exc2, f"creating secret {secret_id!r}") from exc2
        self._forget()

    def delete(self, secret_id: str) -> None:
        try:
            self.clients.secretsmanager.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
        except Exception as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise translate(exc, f"deleting secret {secret_id!r}") from exc
        self._forget()

    def _forget(self) -> None:
        """After a write, this process reads every secret afresh (writes are rare: the CLI's)."""
        self._cache.clear()
