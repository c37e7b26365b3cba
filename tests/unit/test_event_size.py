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


def test_the_follower_notification_of_a_reply_of_emoji_fits_an_sqs_message():
    """Notifications carried 60,000 characters of text: 720 KB of JSON for emoji, which SQS refuses
    (256 KB), so the follower was never notified."""
    from mailgate import jsonfit
    from mailgate.domain import Thread

    from .inbound_support import mail, notifications, reply_address

    c = stack()
    c.threads.put_thread(Thread("t1", model="crm.lead", record_id="5", followers=["rep@example.org"]))
    addr = reply_address(c, "t1")
    body = "\n".join("\U0001F600" * 40 for _ in range(1500))  # 60,000 emoji
    rec = deliver(c, mail(to=addr, body=body), recipients=[addr])
    assert rec.outcome == "thread"
    [note] = notifications(c)
    assert jsonfit.size(note) <= jsonfit.QUEUE_BODY_BYTES and note["text"].startswith("\U0001F600")
