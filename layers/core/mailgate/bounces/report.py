"""What the classifier says about one message: its kind and, per recipient, what happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = ("normal", "bounce", "auto-reply", "complaint", "delivery-report")


@dataclass
class BounceRecipient:
    address: str
    permanent: bool
    status: str = ""
    diagnostic: str = ""
    reason: str = ""
    action: str = "failed"

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "permanent": self.permanent, "status": self.status,
                "diagnostic": self.diagnostic, "reason": self.reason, "action": self.action}


@dataclass
class BounceReport:
    kind: str = "normal"
    recipients: list[BounceRecipient] = field(default_factory=list)
    feedback_type: str = ""
    original_message_id: str = ""
    original_mailgate_id: str = ""
    #: how the answer was found: "arf", "jmrp", "dsn", "text", "flufl", "headers", "ses", ""
    method: str = ""
    #: why classification gave up early (hostile or broken input); empty when all went well
    error: str = ""
    #: what was not read (a bound cut the text, the lines or the recipients), as short sentences
    defects: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[BounceRecipient]:
        return [r for r in self.recipients if r.action in ("failed", "delayed")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "recipients": [r.to_dict() for r in self.recipients],
            "feedback_type": self.feedback_type,
            "original_message_id": self.original_message_id,
            "original_mailgate_id": self.original_mailgate_id,
            "method": self.method,
            "error": self.error,
            "defects": self.defects,
        }

    def inspect_dict(self) -> dict[str, Any]:
        """The shape `mailgate inspect --json` shows: {"kind": ..., "bounce": {...}}."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind != "normal":
            body = self.to_dict()
            body.pop("kind")
            out["bounce"] = body
        return out
