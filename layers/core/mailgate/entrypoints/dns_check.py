"""Daily schedule: check every alias domain's DNS records and report what went wrong."""

from ._runtime import container, count, logger, metrics
from ..services import dnswatch


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    results = dnswatch.run_daily(container(), dnswatch.system_resolver_factory())
    count("DnsDomainsChecked", len(results))
    return {"results": results}
