"""Daily schedule: check every alias domain's DNS records and report what went wrong."""

from ..services import dnswatch
from ._runtime import container, count, logger, metrics, schedule_of


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    results = dnswatch.run_daily(container())
    count("DnsDomainsChecked", len(results))
    logger.info("DNS of the alias domains checked", extra={"domains": len(results), **schedule_of(event)})
    return {"results": results}
