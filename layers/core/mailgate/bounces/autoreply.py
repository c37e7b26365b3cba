"""RFC 3834 automatic replies (vacation notices, out-of-office) as a kind of their own.

Read only when the message is not a bounce: many mailers mark their bounces auto-replied too.
"""

from __future__ import annotations

from .. import automatic
from ..message import ParsedMessage


def auto_reply_reason(p: ParsedMessage) -> str:
    """Why `p` is an automatic reply (RFC 3834 and the responders' own headers), or ''."""
    auto = automatic.auto_submitted(p)
    if auto.startswith("auto-replied"):
        return "Auto-Submitted: auto-replied"
    headers = automatic.responder_headers(p)
    if headers:
        return f"{headers[0]} header"
    if automatic.apple_vacation(p):
        return "X-Apple-Action: vacation"
    if automatic.precedence(p) == automatic.PRECEDENCE_AUTO_REPLY:
        return "Precedence: auto_reply"
    if automatic.VACATION_SUBJECT.search(p.subject):
        return f"subject: {p.subject[:80]}"
    if auto.startswith("auto-generated") and p.headers.first("x-auto-response-suppress"):
        return "Auto-Submitted: auto-generated"
    return ""
