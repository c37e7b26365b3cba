"""SES receipt rule, Lambda action: route the message SES stored in S3 (DESIGN.md flow 1).

SES's S3 action stores the raw mail at `<prefix><mail.messageId>` before this runs; the event
carries only the headers, the envelope recipients and SES's verdicts.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.ses_event import SESEvent, SESEventRecord, SESReceipt

from ..services import inbound
from ._runtime import container, count, deadline_from, logger, metrics, outcome_metric


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    result = handle(container(), event, deadline=deadline_from(context))
    for r in result["results"]:
        count(outcome_metric(r.get("outcome", "error")))  # InboundNewRecord, InboundThread, InboundFailed...
        logger.info("message routed", extra={k: r.get(k) for k in ("key", "outcome", "reason")})
    return result


def handle(c, event: Any, *, deadline: float | None = None) -> dict[str, Any]:
    """Route each received message; returns {"disposition": "CONTINUE", "results": [...]}.
    `deadline` (time.monotonic()) is when routing must have stopped: a message that does not
    route by then is recorded failed with the reason, not left to time the invocation out.

    SES reads `disposition` only for RequestResponse invocations (the rule invokes with Event);
    the results are for the logs and the local stack. A malformed record is reported in them,
    never raised; trouble of the stores (TransientError) fails the invocation, which Lambda
    retries, and `ingest` makes the retry change nothing that was done."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records:
        return {"disposition": "CONTINUE", "results": [{"error": "not an SES event: no Records"}]}
    return {"disposition": "CONTINUE", "results": [_route(c, record, deadline) for record in SESEvent(event).records]}


def _route(c, record: SESEventRecord, deadline: float | None) -> dict[str, Any]:
    try:
        mail, receipt = record.ses.mail, record.ses.receipt
        ses_id, recipients = mail.message_id, list(receipt.recipients or [])
        verdicts = verdicts_from_receipt(receipt)
    except (KeyError, TypeError) as exc:
        return {"error": f"malformed SES record: missing {exc}"}
    raw_key = (c.settings.ses_raw_prefix or inbound.RAW_PREFIX) + ses_id
    routed = inbound.ingest(c, raw_key, source="ses", envelope_recipients=recipients, verdicts=verdicts,
                            deadline=deadline)
    return {"key": routed.key, "outcome": routed.outcome, "reason": routed.reason, "thread_id": routed.thread_id}


_VERDICTS = {"spam": "spam_verdict", "virus": "virus_verdict", "spf": "spf_verdict", "dkim": "dkim_verdict",
             "dmarc": "dmarc_verdict"}


def verdicts_from_receipt(receipt: SESReceipt) -> dict[str, str]:
    """SES's verdicts as routing reads them (PASS, FAIL, GRAY, PROCESSING_FAILED, DISABLED when
    scanning is off), and "" for one the receipt does not carry in that shape."""
    verdicts = {name: _status(receipt, prop) for name, prop in _VERDICTS.items()}
    verdicts["dmarc_policy"] = str(receipt.dmarc_policy or "")
    return verdicts


def _status(receipt: SESReceipt, prop: str) -> str:
    try:
        return str(getattr(receipt, prop).status)
    except (KeyError, TypeError):
        return ""
