"""RFC 3834 automatic replies (vacation notices, out-of-office, acknowledgments, challenges) as a
kind of their own.

Read only when the message is not a bounce: many mailers mark their bounces auto-replied too.
The signs are `automatic.auto_reply_signs` (shared with the loop signals); list mail is not an
auto-reply.
"""

from __future__ import annotations

from .. import automatic
from ..message import ParsedMessage


def auto_reply_reason(p: ParsedMessage, text: str | None = None) -> str:
    """Why `p` is an automatic reply, or '' (`text`: its first text part, as already decoded)."""
    return "; ".join(automatic.auto_reply_signs(p, text))[:300]
