"""Delivery to the application's targets over the in-memory fakes: which messages go where, once
per message and target, retried with backoff, failures kept and replayable."""

from __future__ import annotations

import json

import pytest

from mailgate.domain import Alias, AliasDomain, DeliveryTarget
from mailgate.entrypoints import delivery as delivery_entry
from mailgate.ports import DeliveryAnswer
from mailgate.services import delivery, inbound
from tests.unit.inbound_support import mail, stack


def configured(kind="odoo", **target_kw):
    c = stack()
    target = DeliveryTarget(name="crm", kind=kind, url="https://odoo.example", database="prod", user="bot",
                            secret_id="mailgate/target/crm", **target_kw)
    c.config.put_target(target)
    secret = "odoo-key" if kind == "odoo" else json.dumps({"secrets": [{"secret": "whsec_" + "A" * 32, "until": None}]})
    c.secrets.put(target.secret_id, secret)
    c.config.put_domain(AliasDomain("example.test", deliver_to="crm"))
    return c


def receive(c, raw: bytes, to=("sales@example.test",)):
    key = f"raw/ses/{abs(hash(raw))}"
    c.raw_store.put(key, raw)
    return inbound.ingest(c, key, source="ses", envelope_recipients=list(to))


def run_jobs(c, *, attempt=1):
    """Every queued job once, as the delivery function would; the states it left."""
    jobs, c.delivery_queue.sent = list(c.delivery_queue.sent), []
    return [delivery.deliver(c, job, attempt=attempt) for job in jobs]


def test_a_new_record_in_a_domain_delivered_to_odoo_is_queued_once_and_handed_over_byte_identical():
    c = configured()
    raw = mail(subject="Quote")
    record = receive(c, raw)
    assert record.outcome == "new-record"
    assert c.delivery_queue.sent == [{"message_key": record.key, "target": "crm"}]
    (state,) = run_jobs(c)
    assert state["status"] == "delivered"
    (name, handed), = c.targets.delivered
    assert name == "crm" and handed.raw == raw and handed.payload is None
    # the same message again (SES delivers twice, a replay): nothing new reaches Odoo
    receive(c, raw)
    inbound.replay(c, record.key)
    assert run_jobs(c) == [] and len(c.targets.delivered) == 1


def test_an_alias_can_keep_its_mail_on_the_event_bus_only():
    c = configured()
    c.config.put_alias(Alias("example.test", "sales", "crm.lead", deliver_to="eventbridge"))
    receive(c, mail())
    assert c.delivery_queue.sent == [] and c.events.published


def test_an_alias_can_name_its_own_target_in_a_domain_without_one():
    c = configured()
    c.config.put_domain(AliasDomain("example.test"))
    c.config.put_alias(Alias("example.test", "sales", "crm.lead", deliver_to="crm"))
    receive(c, mail())
    assert [j["target"] for j in c.delivery_queue.sent] == ["crm"]


def test_loops_and_quarantined_mail_never_reach_the_target():
    c = configured()
    for _ in range(25):  # one sender writing to one alias again and again: a loop after 20
        receive(c, mail(frm="robot@client.test"))
    receive(c, mail(), to=("sales@example.test",))
    c.raw_store.put("raw/ses/virus", mail(subject="invoice"))
    inbound.ingest(c, "raw/ses/virus", source="ses", envelope_recipients=["sales@example.test"],
                   verdicts={"virus": "FAIL"})
    outcomes = {c.messages.get(j["message_key"]).outcome for j in c.delivery_queue.sent}
    assert outcomes == {"new-record"}
    assert {r.outcome for r in c.messages.list(limit=100)} >= {"loop", "quarantined"}


def test_mail_to_the_catchall_of_an_odoo_domain_goes_to_odoo_which_answers_it_not_the_gateway():
    """A reply to Odoo's own notification comes to the catchall and names Odoo's Message-IDs,
    which only Odoo knows: Odoo finds its thread; an unknown alias Odoo bounces itself."""
    c = configured()
    raw = mail(to="catchall@example.test", subject="Re: Your quotation S00042",
               headers={"In-Reply-To": "<4711.1733-openerp-42-sale.order@example.test>"})
    record = receive(c, raw, to=("catchall@example.test",))
    assert record.outcome == "unknown-recipient"
    assert c.outbound_queue.sent == []  # no polite answer from the gateway
    assert "left to the delivery target crm" in c.messages.get(record.key).detail["answer"]
    (state,) = run_jobs(c)
    assert state["status"] == "delivered" and c.targets.delivered[0][1].raw == raw


def test_a_webhook_gets_no_mail_the_gateway_could_not_route_and_the_sender_is_answered():
    c = configured("webhook")
    receive(c, mail(to="nobody@example.test"), to=("nobody@example.test",))
    assert c.delivery_queue.sent == [] and len(c.outbound_queue.sent) == 1


@pytest.mark.parametrize("kind,passes,status", [("odoo", True, "delivered"), ("odoo", False, "kept"),
                                                ("webhook", True, "kept")])
def test_automatic_mail_goes_to_odoo_only_when_the_target_passes_it_on(kind, passes, status):
    c = configured(kind, pass_automatic=passes)
    receive(c, mail(headers={"Auto-Submitted": "auto-replied"}))
    (state,) = run_jobs(c)
    assert state["status"] == status
    assert len(c.targets.delivered) == (1 if status == "delivered" else 0)


def test_a_webhook_gets_the_event_detail_and_a_short_lived_url_of_the_raw_message():
    c = configured("webhook")
    record = receive(c, mail(subject="Quote please"))
    run_jobs(c)
    (_, handed), = c.targets.delivered
    body = handed.payload
    assert body["type"] == "mailgate.record_to_create" and body["detail_type"] == "Record To Create"
    published = [d for t, d in c.events.published if t == "Record To Create"][0]
    # the event's own id stays on the bus: the webhook's id is webhook-id
    assert {k: v for k, v in body["data"].items() if k not in ("raw_url", "raw_url_expires_at")} == \
        {k: v for k, v in json.loads(json.dumps(published, default=str)).items() if k != "event_id"}
    assert body["data"]["raw_url"].startswith("memory://raw/" + record.raw_key)
    assert handed.delivery_id == delivery.webhook_id(record.key, "crm")


def test_a_target_down_is_retried_with_doubling_delays_and_delivered_once_when_back():
    c = configured()
    down = DeliveryAnswer("retry", 503, "HTTP 503: down")
    c.targets.answers["crm"] = [down, down, down, DeliveryAnswer("delivered", 200)]
    record = receive(c, mail())
    job = c.delivery_queue.sent[0]
    states = [delivery.deliver(c, job, attempt=n) for n in (1, 2, 3, 4)]
    assert [s["status"] for s in states] == ["retrying", "retrying", "retrying", "delivered"]
    assert [s.get("retry_in") for s in states[:3]] == [60, 120, 240]
    assert delivery.deliver(c, job, attempt=5)["status"] == "delivered"  # a late duplicate job
    assert len(c.targets.delivered) == 4
    assert [a["outcome"] for a in delivery.get(c, f"{record.key}#crm")["attempts"]] == \
        ["retry", "retry", "retry", "delivered"]


def test_retry_after_is_honoured_and_the_last_attempt_gives_up_as_failed():
    c = configured()
    c.targets.answers["crm"] = [DeliveryAnswer("retry", 429, "HTTP 429", retry_after=900)]
    receive(c, mail())
    job = c.delivery_queue.sent[0]
    assert delivery.deliver(c, job, attempt=1)["retry_in"] == 900
    last = delivery.deliver(c, job, attempt=delivery.MAX_ATTEMPTS)
    assert last["status"] == "failed" and last["detail"].startswith(f"gave up after {delivery.MAX_ATTEMPTS} attempts")


def test_a_permanent_failure_is_kept_with_the_answer_and_retry_delivers_it_after_the_fix():
    c = configured()
    c.targets.answers["crm"] = [DeliveryAnswer("failed", None, "XML-RPC fault 2: Object mail.thread doesn't exist"),
                                DeliveryAnswer("delivered", 200)]
    raw = mail()
    record = receive(c, raw)
    (state,) = run_jobs(c)
    assert state["status"] == "failed" and "fault 2" in state["detail"]
    assert [d["id"] for d in delivery.list_deliveries(c, failed=True)] == [f"{record.key}#crm"]
    inbound.replay(c, record.key)  # nothing queues a failed pair again by itself
    assert c.delivery_queue.sent == []
    again = delivery.retry(c, f"{record.key}#crm")
    assert again["status"] == "queued"
    (state,) = run_jobs(c)
    assert state["status"] == "delivered" and delivery.list_deliveries(c, failed=True) == []


def test_a_target_removed_meanwhile_fails_the_delivery_with_a_reason():
    c = configured()
    receive(c, mail())
    c.config.delete_target("crm")
    (state,) = run_jobs(c)
    assert state["status"] == "failed" and "no delivery target 'crm'" in state["detail"]


def test_a_second_attempt_while_one_is_in_flight_waits():
    c = configured()
    record = receive(c, mail())
    delivery._take(c, record.key, "crm")  # an attempt holds it (a worker still calling Odoo)
    state = delivery.deliver(c, c.delivery_queue.sent[0], attempt=2)
    assert state["status"] == "busy" and state["retry_in"] > 0 and c.targets.delivered == []


def test_webhook_secrets_past_their_overlap_no_longer_sign():
    value = json.dumps({"secrets": [{"secret": "new", "until": None}, {"secret": "old", "until": 1000}]})
    assert delivery.valid_secrets(value, now=999) == ["new", "old"]
    assert delivery.valid_secrets(value, now=1001) == ["new"]


def sqs_event(*bodies, receives=1):
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": f"h{i}", "body": json.dumps(b),
                         "attributes": {"ApproximateReceiveCount": str(receives)}, "messageAttributes": {},
                         "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
                         "awsRegion": "us-east-1"} for i, b in enumerate(bodies)]}


def test_the_delivery_function_delays_a_retry_and_reports_it_as_a_batch_item_failure(capsys):
    c = configured()
    c.targets.answers["crm"] = [DeliveryAnswer("retry", 503, "HTTP 503", retry_after=None)]
    receive(c, mail())
    result = delivery_entry.handle(c, sqs_event(c.delivery_queue.sent[0], receives=3))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert c.delivery_queue.delays == [("h0", 240)]
    metric = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "DeliveryFailures" in line]
    assert metric and metric[0]["Target"] == "crm" and metric[0]["DeliveryFailures"] == [1.0]


def test_the_delivery_function_lets_a_done_job_go():
    c = configured()
    receive(c, mail())
    assert delivery_entry.handle(c, sqs_event(c.delivery_queue.sent[0])) == {"batchItemFailures": []}


class _DownQueue:
    """The delivery queue unreachable for its first `failures` sends."""

    def __init__(self, queue, failures: int) -> None:
        self.queue, self.failures = queue, failures

    def send(self, body, *, dedup_id=None):
        from mailgate.errors import TransientError

        if self.failures > 0:
            self.failures -= 1
            raise TransientError("SQS unreachable", code="aws-transient")
        self.queue.send(body, dedup_id=dedup_id)


def test_a_delivery_left_pending_by_the_inbound_invocation_is_queued_once_by_the_outbox_sweep():
    """The job is an effect recorded with the outcome (the transactional outbox): when the queue
    cannot be reached, the job stays pending and the sweep queues it, once."""
    from mailgate.errors import TransientError
    from mailgate.services import outbox

    c = configured()
    queue = c.delivery_queue
    c.delivery_queue = _DownQueue(queue, failures=1)
    try:
        record = receive(c, mail())
    except TransientError:  # the invocation asks to be retried: the outcome and its effects are recorded
        record = c.messages.list(limit=1)[0]
    assert record.outcome == "new-record" and queue.sent == []
    assert outbox.sweep(c, older_than=0)["done"] >= 1
    outbox.sweep(c, older_than=0)
    assert queue.sent == [{"message_key": record.key, "target": "crm"}]


def test_no_retry_is_delayed_beyond_what_sqs_allows_and_a_target_down_for_a_day_is_still_retried():
    # SQS refuses a visibility timeout that reaches past 12 h from the message's receipt (and the
    # attempt itself took some of it): a longer delay fell back to the queue's default, so the
    # attempts ran out hours early.
    limit = 12 * 3600 - 120  # the delivery function's timeout
    delays = [delivery.retry_delay(60, n) for n in range(1, delivery.MAX_ATTEMPTS)]
    assert max(delays) <= limit
    assert sum(delays) >= 24 * 3600
    assert delivery.retry_delay(60, 1, retry_after=10 * 86400) <= limit


def test_an_unexpected_error_in_a_delivery_is_recorded_as_an_attempt_and_retried():
    c = configured(kind="webhook")
    c.secrets.put("mailgate/target/crm", json.dumps({"secrets": [{"not-a-secret": 1}]}))  # written by hand, wrong
    record = receive(c, mail())
    (state,) = run_jobs(c)
    assert state["status"] == "retrying"
    (attempt,) = delivery.get(c, f"{record.key}#crm")["attempts"]
    assert attempt["outcome"] == "retry" and "KeyError" in attempt["detail"]
