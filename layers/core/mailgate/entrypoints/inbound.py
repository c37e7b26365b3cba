"""SES receipt rule, Lambda action: route the message SES stored in S3 (DESIGN.md flow 1)."""

from ._runtime import container, count, logger, metrics
from ..services import inbound


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    result = inbound.handle_ses_event(container(), event)
    for r in result["results"]:
        # e.g. InboundNewRecord, InboundThread, InboundLoop, InboundFailed
        count("Inbound" + "".join(w.title() for w in str(r.get("outcome", "error")).split("-")))
        logger.info("message routed", extra={k: r.get(k) for k in ("key", "outcome", "reason")})
    return result
