"""What every handler shares: the Powertools logger and metrics, the container, the deadline."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.data_classes.event_bridge_event import EventBridgeEvent

from .. import bootstrap

NAMESPACE = SERVICE = "mailgate"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def count(name: str, value: float = 1) -> None:
    """One CloudWatch metric (EMF through Powertools), in the `mailgate` namespace."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def seconds(name: str, value: float) -> None:
    """A duration metric (the dashboard and the alarms read its Maximum)."""
    metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=round(max(0.0, float(value)), 3))


def outcome_metric(outcome: str) -> str:
    """The metric counting messages of an inbound outcome: InboundNewRecord, InboundThread,
    InboundLoop, InboundFailed... (received and fetched messages alike)."""
    return "Inbound" + "".join(w.title() for w in str(outcome or "error").split("-"))


# Counts of a metric per value of one dimension (a transport, a target): a set of values the
# configuration bounds, never one per message. They add up over the invocation and go out as one
# EMF line per (metric, value) at its end: Powertools' Metrics gives all of a flush one set of
# dimensions, so each of these is a `single_metric`.
_tallies: Counter[tuple[str, str, str]] = Counter()
_tallies_lock = threading.Lock()


def tally(name: str, dimension: str, value: str, n: int = 1) -> None:
    with _tallies_lock:
        _tallies[(name, dimension, value or "none")] += n


def emit_tallies() -> None:
    with _tallies_lock:
        counts = dict(_tallies)
        _tallies.clear()
    for (name, dimension, value), n in counts.items():
        with single_metric(name=name, unit=MetricUnit.Count, value=n, namespace=NAMESPACE,
                           default_dimensions={"service": SERVICE}) as metric:
            metric.add_dimension(name=dimension, value=value)


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
