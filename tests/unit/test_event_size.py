"""What the gateway publishes fits what the services accept: an EventBridge entry (256 KB,
counted in bytes of the JSON actually sent) and an SQS message body (256 KB), whatever the
message's text is made of."""

from __future__ import annotations

import json

from mailgate.adapters.aws import SOURCE as EVENT_SOURCE

from ..hostile import BY_NAME
from .inbound_support import deliver, stack


def test_the_event_of_a_message_of_twenty_thousand_emoji_fits_eventbridge():
    """The event budget counted characters; JSON escapes a non-BMP character to 12 bytes, so the
    event of a body of 20,000 emoji was over the 256 KB that PutEvents accepts for one entry."""
    c = stack()
    rec = deliver(c, BY_NAME["emoji-body"].message(20_000))
    assert rec.outcome == "new-record"
    for detail_type, detail in c.events.published:
        entry = len(json.dumps(detail, default=str).encode()) + len(detail_type.encode()) + len(EVENT_SOURCE)
        assert entry <= 256 * 1024, f"{detail_type}: {entry} bytes"
