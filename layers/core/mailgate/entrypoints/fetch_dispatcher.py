"""EventBridge schedule: queue one fetch job per incoming server that is due (DESIGN.md flow 2)."""

from ..services import fetch
from ._runtime import container, count, logger, metrics, schedule_of


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    c = container()
    queued = fetch.dispatch(c)
    count("FetchJobsQueued", queued)
    # a gauge on every run: the alarm stays raised while any server is disabled
    count("FetchServersDisabled", fetch.servers_disabled(c))
    logger.info("fetch jobs queued", extra={"queued": queued, **schedule_of(event)})
    return {"queued": queued}
