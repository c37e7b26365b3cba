"""Bounce, complaint and auto-reply classification: pure functions over a received message.

`classify(raw)` (or `classify_parsed(parsed)` for a message already parsed) tells what a message
that reached us is — a bounce (with its failed recipients), a complaint (RFC 5965 ARF), an
auto-reply (RFC 3834), a delivery-success report, or a normal message — and never raises,
whatever the bytes. It reads, in this order (`classify`):

1. RFC 5965 feedback reports (`message/feedback-report`) -> complaint (`dsn`);
2. RFC 3464 delivery status notifications (`message/delivery-status`): one entry per recipient
   with Action / Status / Diagnostic-Code (`dsn`);
3. the non-standard bounce texts of mail systems that predate or ignore RFC 3464 (`text`);
4. RFC 3834 auto-replies (`autoreply`) — only when the message is not a bounce, since many
   mailers mark their bounces auto-replied too.

SES notifications (`ses`) are the same reports in Amazon's JSON; `reasons` says why a recipient
failed and whether the address is dead (`is_permanent`).
"""

from .classify import classify, classify_parsed
from .reasons import HARD_REASONS, is_permanent, reason_for
from .report import KINDS, BounceRecipient, BounceReport
from .ses import classify_ses_notification

__all__ = ["KINDS", "HARD_REASONS", "BounceRecipient", "BounceReport", "classify", "classify_parsed",
           "classify_ses_notification", "is_permanent", "reason_for"]
