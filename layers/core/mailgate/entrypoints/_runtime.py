"""What every handler shares: the Powertools logger and metrics, and the container."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="mailgate")
metrics = Metrics(namespace="mailgate", service="mailgate")


def count(name: str, value: float = 1) -> None:
    """One CloudWatch metric (EMF through Powertools), in the `mailgate` namespace."""
    from aws_lambda_powertools.metrics import MetricUnit

    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def container():
    from .. import bootstrap

    return bootstrap.container()


def deadline_from(context, margin_ms: int = 15_000) -> float:
    """A monotonic deadline that stops work `margin_ms` before Lambda's timeout."""
    import time

    remaining = context.get_remaining_time_in_millis() if context else 300_000
    return time.monotonic() + max(1_000, remaining - margin_ms) / 1000.0
