"""The gateway's configuration and records as plain values (Odoo's words in the docstrings).

These are what the core works with; the DynamoDB models in `adapters.dynamo` persist them.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

ContactPolicy = Literal["everyone", "partners", "followers"]
Security = Literal["ssl", "starttls", "none"]
AckMode = Literal["leave", "seen", "move", "delete"]


def new_id(nbytes: int = 10) -> str:
    """A random id in lower-case base32 (no padding): safe in a local part, case-insensitive."""
    return base64.b32encode(secrets.token_bytes(nbytes)).decode().rstrip("=").lower()


def server_secret_id(prefix: str, kind: str, name: str) -> str:
    """Where a server's password is kept: <prefix><imap|pop|smtp>/<name>. Mailbox and relay
    passwords live under prefixes of their own, so that IAM lets the fetch worker read only the
    first and the outbound function only the second (template.yaml)."""
    return f"{prefix}{kind}/{name}"


def now() -> float:
    return time.time()


@dataclass(frozen=True)
class AliasDomain:
    """Odoo's alias domain (`mail.alias.domain`): catchall, bounce alias and default sender."""

    name: str
    catchall: str = "catchall"
    bounce: str = "bounce"
    default_from: str = "notifications"
    #: inbound verdict policy for SES spam/virus/SPF/DKIM/DMARC verdicts
    quarantine_virus: bool = True
    quarantine_dmarc_fail: bool = True
    quarantine_spam: bool = False
    #: loop protection: more than `loop_limit` mails per sender and alias in `loop_window_minutes`
    loop_limit: int = 20
    loop_window_minutes: int = 120
    loop_allowlist: tuple[str, ...] = ()
    #: DKIM selector the gateway signs with for this domain
    dkim_selector: str = "mailgate"
    bounce_text: str = ""
    #: where the customer's mail arrives: "mx" (the domain's MX points at SES) or "redirect"
    #: (the customer forwards catchall@ their domain to the gateway domain)
    inbound: Literal["mx", "redirect"] = "mx"
    #: DMARC aggregate report address advised in the _dmarc record (default: dmarc@ the domain)
    dmarc_rua: str = ""
    #: where routed mail goes besides the EventBridge events: a delivery target's name ("" or
    #: "eventbridge": events only)
    deliver_to: str = ""

    def __post_init__(self) -> None:
        # Domains and local parts are matched case-insensitively (RFC 5321 §2.4 in practice).
        for name in ("name", "catchall", "bounce", "default_from"):
            object.__setattr__(self, name, getattr(self, name).strip().lower())

    @property
    def catchall_address(self) -> str:
        return f"{self.catchall}@{self.name}"

    @property
    def bounce_address(self) -> str:
        return f"{self.bounce}@{self.name}"

    @property
    def default_from_address(self) -> str:
        return f"{self.default_from}@{self.name}"


@dataclass(frozen=True)
class Alias:
    """Odoo's `mail.alias`: mail to name@domain creates a record of `model` (or joins a forced thread)."""

    domain: str
    name: str
    model: str
    defaults: dict[str, Any] = field(default_factory=dict)
    force_thread_id: str | None = None
    contact_policy: ContactPolicy = "everyone"
    bounce_text: str = ""
    #: overrides the alias domain's delivery target ("eventbridge": events only)
    deliver_to: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "domain", self.domain.strip().lower())
        object.__setattr__(self, "name", self.name.strip().lower())

    @property
    def address(self) -> str:
        return f"{self.name}@{self.domain}"


@dataclass(frozen=True)
class IncomingServer:
    """Odoo's `fetchmail.server`. The password lives in Secrets Manager under `secret_id`."""

    name: str
    protocol: Literal["imap", "pop"]
    host: str
    port: int
    user: str
    security: Security = "ssl"
    secret_id: str = ""
    folder: str = "INBOX"
    interval_minutes: int = 5
    ack: AckMode = "seen"
    move_to: str = ""
    keep_original: bool = True
    attachments: bool = True
    fallback_model: str = ""
    max_message_bytes: int = 40 * 1024 * 1024
    allow_plaintext: bool = False
    verify_tls: bool = True
    enabled: bool = True


@dataclass(frozen=True)
class FetchSchedule:
    """When an enabled incoming server is next due for a fetch: its entry in the schedule index
    the dispatcher reads (due 0: at once, e.g. a server just added or enabled)."""

    name: str
    due: float = 0.0
    interval_minutes: int = 5


@dataclass(frozen=True)
class OutgoingServer:
    """Odoo's `ir.mail_server`. The password lives in Secrets Manager under `secret_id`."""

    name: str
    host: str
    port: int
    user: str = ""
    security: Security = "starttls"
    secret_id: str = ""
    from_filter: str = ""
    priority: int = 10
    allow_plaintext: bool = False
    verify_tls: bool = True


#: the target every routed message goes to already: the application's EventBridge bus
EVENTBRIDGE = "eventbridge"


@dataclass(frozen=True)
class DeliveryTarget:
    """Where routed mail is delivered besides the EventBridge events: an Odoo database (the raw
    message handed to `mail.thread.message_process`, as Odoo's own mail gateway script does) or
    a webhook signed per the Standard Webhooks specification.

    The Odoo API key, or the webhook's signing secrets, live in Secrets Manager under `secret_id`.
    """

    name: str
    kind: Literal["odoo", "webhook"]
    url: str
    secret_id: str = ""
    #: Odoo: the database, the login XML-RPC authenticates, and which external API to call
    database: str = ""
    user: str = ""
    api: Literal["xmlrpc", "json2"] = "xmlrpc"
    #: Odoo: the user id `authenticate` returned (kept so a delivery makes one call, not two)
    uid: int = 0
    #: pass bounces and auto-replies on to the target (Odoo counts bounces itself) or keep them
    pass_automatic: bool = True
    timeout_seconds: float = 30.0
    verify_tls: bool = True


@dataclass
class Thread:
    """Odoo's `mail.thread` of one record (model, record id), with its followers' addresses."""

    thread_id: str
    model: str = ""
    record_id: str = ""
    subject: str = ""
    followers: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=now)


@dataclass
class MessageRecord:
    """One raw message the gateway took in or sent, with its outcome and the reason for it.

    `key` is the idempotency key (inbound: `inbound_model.message_key`, from the origin fields
    and body; outbound: `out:<ref>`);
    `raw_key` is where the raw bytes are stored (S3 key).
    """

    key: str
    raw_key: str
    direction: Literal["in", "out"] = "in"
    source: str = ""
    message_id: str = ""
    digest: str = ""
    sender: str = ""
    recipients: list[str] = field(default_factory=list)
    subject: str = ""
    outcome: str = "received"
    reason: str = ""
    thread_id: str = ""
    received_at: float = field(default_factory=now)
    detail: dict[str, Any] = field(default_factory=dict)
    #: bumped by each replay, whose write is conditional on it (MessageRepository.replace)
    version: int = 0
