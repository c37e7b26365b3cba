"""What every handler shares: the Powertools logger and metrics, the container, the deadline."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

from .. import bootstrap

logger = Logger(service="mailgate")
metrics = Metrics(namespace="mailgate", service="mailgate")


def count(name: str, value: float = 1) -> None:
    """One CloudWatch metric (EMF through Powertools), in the `mailgate` namespace."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def container() -> bootstrap.Container:
    return bootstrap.container()


def deadline_from(context, margin_ms: int = 15_000) -> float:
    """A monotonic deadline that stops work `margin_ms` before Lambda's timeout."""
    remaining = context.get_remaining_time_in_millis() if context else 300_000
    return time.monotonic() + max(1_000, remaining - margin_ms) / 1000.0


def schedule_of(event: Any) -> dict[str, str]:
    """The rule and time of an EventBridge schedule event, for the logs (empty when the function
    was invoked by hand with some other payload: the schedule's job runs all the same)."""
    schedule = EventBridgeEvent(event if isinstance(event, dict) else {})
    try:
        return {"rule": str(schedule.resources[0]).rpartition("/")[2], "scheduled_at": schedule.time}
    except (KeyError, IndexError, TypeError):
        return {}
