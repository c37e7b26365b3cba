"""The operator's ports: queue depths, alarms, SES set-up (adapters: `admin.aws`; fakes:
`mailgate_dev.fakes`). Failures are the core's MailgateErrors, with the fix in the message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class QueueDepth:
    name: str
    url: str
    visible: int = 0
    in_flight: int = 0
    delayed: int = 0
    #: a dead-letter queue (what is in it needs a person)
    dead_letter: bool = False
    error: str = ""


class QueueStats(Protocol):
    def depth(self, url: str) -> QueueDepth:
        """The queue's approximate counts (SQS GetQueueAttributes); `error` set when unreadable."""
        ...


@dataclass(frozen=True)
class Alarm:
    name: str
    reason: str
    since: float


class AlarmReader(Protocol):
    def in_alarm(self, topic_arn: str) -> list[Alarm]:
        """The alarms in state ALARM whose actions notify `topic_arn` (the stack's alarm topic)."""
        ...


@dataclass(frozen=True)
class SesAccount:
    """SESv2 GetAccount: whether the account left the sandbox and may send."""

    production_access: bool
    sending_enabled: bool
    enforcement_status: str = ""      # HEALTHY | PROBATION | SHUTDOWN
    max_24_hour_send: float = 0.0
    max_send_rate: float = 0.0


@dataclass(frozen=True)
class SesIdentity:
    """SESv2 GetEmailIdentity of a domain."""

    name: str
    verified_for_sending: bool = False
    verification_status: str = "PENDING"     # PENDING | SUCCESS | FAILED | TEMPORARY_FAILURE | NOT_STARTED
    dkim_status: str = "NOT_STARTED"         # the same values
    dkim_origin: str = "AWS_SES"             # AWS_SES (Easy DKIM) | EXTERNAL (Bring Your Own DKIM)
    dkim_tokens: tuple[str, ...] = ()        # Easy DKIM: <token>._domainkey CNAME <token>.dkim.amazonses.com
    mail_from_domain: str = ""
    mail_from_status: str = ""               # PENDING | SUCCESS | FAILED | TEMPORARY_FAILURE
    configuration_set: str = ""


@dataclass(frozen=True)
class ByoDkim:
    """Bring Your Own DKIM: SES signs with this key (the gateway's) under this selector."""

    selector: str
    #: the RSA private key, base64 DER (PKCS#1), as SES takes it
    private_key_b64: str


@dataclass(frozen=True)
class EventDestination:
    name: str
    enabled: bool
    event_types: tuple[str, ...] = ()
    topic_arn: str = ""


class SesAdmin(Protocol):
    def account(self) -> SesAccount: ...
    def identity(self, domain: str) -> SesIdentity | None: ...
    def create_identity(self, domain: str, *, dkim: ByoDkim | None, configuration_set: str) -> SesIdentity:
        """A domain identity with Easy DKIM (`dkim` None) or Bring Your Own DKIM, whose mail
        uses `configuration_set` by default."""
        ...
    def set_dkim(self, domain: str, dkim: ByoDkim | None) -> None:
        """Switch an existing identity to Easy DKIM (None) or to this key."""
        ...
    def set_configuration_set(self, domain: str, configuration_set: str) -> None: ...
    def set_mail_from(self, domain: str, mail_from_domain: str) -> None:
        """The custom MAIL FROM domain (SES falls back to its own when the MX is missing)."""
        ...
    def event_destinations(self, configuration_set: str) -> list[EventDestination]: ...
    def put_event_destination(self, configuration_set: str, destination: EventDestination) -> None:
        """Create the destination, or update the one of that name."""
        ...
    def active_rule_set(self) -> str | None:
        """The receipt rule set active in the account and region (SES v1), None when none is."""
        ...
    def activate_rule_set(self, name: str) -> None: ...


@dataclass
class AdminPorts:
    queues: QueueStats
    alarms: AlarmReader | None
    ses: SesAdmin
    #: the stack's outputs (queue URLs, AlarmTopicArn, ReceiptRuleSetName, ...)
    outputs: dict[str, str] = field(default_factory=dict)
    #: a deployed stack's parameters (SendingDomains, ...); empty for the local stack
    parameters: dict[str, str] = field(default_factory=dict)
    #: the local stack (no CloudWatch alarms there)
    local: bool = False
