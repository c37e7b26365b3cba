"""template.yaml's alarms and dashboard: every dead-letter queue, every function and SES's two
reputation rates has an alarm, every alarm reaches the alarm topic, every threshold is a
documented parameter, and the dashboard shows every function and queue.

Whoever adds a function or a dead-letter queue to the template adds its alarm (and its
dashboard lines) in the template's "operations: alarms and dashboard" block: these tests name
what is missing.
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
HOW = ("add it in the \"operations: alarms and dashboard\" block of template.yaml (whoever adds a "
       "function or a queue adds its alarm; docs/operations.md says what each alarm means)")


@pytest.fixture(scope="module")
def template():
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse((REPO / "template.yaml").read_text())


def _of_type(template, *types):
    return {k: v for k, v in template["Resources"].items() if v["Type"] in types}


def _alarms(template):
    return _of_type(template, "AWS::CloudWatch::Alarm")


def _dimension(alarm, name):
    for d in alarm["Properties"].get("Dimensions", []):
        if d["Name"] == name:
            return d["Value"]
    return None


def dead_letter_queues(template) -> set[str]:
    """Every queue something sends its failures to: a redrive target, a function's DeadLetterQueue,
    an event source's on-failure destination, or a queue named as one."""
    found = set()
    for name, res in template["Resources"].items():
        props = res.get("Properties") or {}
        redrive = props.get("RedrivePolicy") or {}
        target = redrive.get("deadLetterTargetArn")
        if isinstance(target, dict) and "Fn::GetAtt" in target:
            found.add(target["Fn::GetAtt"][0])
        dlq = props.get("DeadLetterQueue") or {}
        if dlq.get("Type") == "SQS" and "Fn::GetAtt" in dlq.get("TargetArn", {}):
            found.add(dlq["TargetArn"]["Fn::GetAtt"][0])
        for event in (props.get("Events") or {}).values():
            on_failure = ((event.get("Properties") or {}).get("DestinationConfig") or {}).get("OnFailure") or {}
            dest = on_failure.get("Destination")
            if isinstance(dest, dict) and "Fn::GetAtt" in dest:
                found.add(dest["Fn::GetAtt"][0])
        if res["Type"] == "AWS::SQS::Queue" and re.search(r"DeadLetter|DLQ|Failure", name):
            found.add(name)
    return found


def test_the_dead_letter_queues_are_found(template):
    # the finder itself: the three queues of today's template at least
    assert {"FetchDeadLetterQueue", "OutboundDeadLetterQueue", "AsyncFailureQueue"} <= dead_letter_queues(template)


def test_every_dead_letter_queue_has_an_alarm_when_it_is_not_empty(template):
    alarmed = {}
    for name, alarm in _alarms(template).items():
        p = alarm["Properties"]
        queue = _dimension(alarm, "QueueName")
        if p.get("Namespace") == "AWS/SQS" and p.get("MetricName") == "ApproximateNumberOfMessagesVisible" and queue:
            alarmed[queue["Fn::GetAtt"][0]] = p
    missing = sorted(dead_letter_queues(template) - set(alarmed))
    assert not missing, f"dead-letter queue(s) without an alarm: {missing}; {HOW}"
    for queue in dead_letter_queues(template):
        p = alarmed[queue]
        assert p["Threshold"] == {"Ref": "DeadLetterAlarmThreshold"}, queue
        assert p["ComparisonOperator"] == "GreaterThanThreshold", f"{queue}: one message must raise it"
        assert p["Statistic"] == "Maximum", queue


def test_every_function_has_an_errors_and_a_throttles_alarm(template):
    functions = _of_type(template, "AWS::Serverless::Function", "AWS::Lambda::Function")
    assert functions
    for metric, threshold in (("Errors", "FunctionErrorsAlarmThreshold"), ("Throttles", "FunctionThrottlesAlarmThreshold")):
        alarmed = {}
        for alarm in _alarms(template).values():
            p = alarm["Properties"]
            fn = _dimension(alarm, "FunctionName")
            if p.get("Namespace") == "AWS/Lambda" and p.get("MetricName") == metric and fn:
                alarmed[fn["Ref"]] = p
        missing = sorted(set(functions) - set(alarmed))
        assert not missing, f"function(s) without a Lambda {metric} alarm: {missing}; {HOW}"
        for fn, p in alarmed.items():
            assert p["Threshold"] == {"Ref": threshold}, fn
            assert p["Statistic"] == "Sum", fn


@pytest.mark.parametrize("metric,default", [("Reputation.BounceRate", 0.05), ("Reputation.ComplaintRate", 0.001)])
def test_ses_reputation_rates_alarm_where_ses_reviews_the_account(template, metric, default):
    # SES places an account under review at a 5% bounce rate and a 0.1% complaint rate (SES
    # Developer Guide, "Reputation metrics messages"); the metrics are fractions (0-1).
    (alarm,) = [a["Properties"] for a in _alarms(template).values()
                if a["Properties"].get("Namespace") == "AWS/SES" and a["Properties"].get("MetricName") == metric]
    parameter = alarm["Threshold"]["Ref"]
    assert template["Parameters"][parameter]["Default"] == default
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert "Dimensions" not in alarm  # account-wide: the rate SES itself judges


@pytest.mark.parametrize("metric", ["InboundFailed", "FetchFailingSeconds", "FetchServersDisabled"])
def test_mail_flow_alarms_watch_metrics_the_handlers_emit(template, metric):
    (alarm,) = [a["Properties"] for a in _alarms(template).values()
                if a["Properties"].get("Namespace") == "mailgate" and a["Properties"].get("MetricName") == metric]
    # Powertools adds the service dimension to every metric it emits (POWERTOOLS_SERVICE_NAME)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "mailgate"}]
    assert _emitted(metric), f"no handler emits {metric}: the alarm would never fire"


def _emitted(metric: str) -> bool:
    from mailgate.entrypoints._runtime import outcome_metric

    entrypoints = REPO / "layers/core/mailgate/entrypoints"
    if metric.startswith("Inbound"):  # one per outcome, counted by both paths messages come in by
        return metric == outcome_metric("failed") and all(
            "outcome_metric(" in (entrypoints / f"{m}.py").read_text() for m in ("inbound", "fetch_worker"))
    return f'"{metric}"' in "\n".join(p.read_text() for p in entrypoints.glob("*.py"))


def test_delivery_failures_alarm_adds_up_every_target(template):
    (alarm,) = [a["Properties"] for a in _alarms(template).values()
                if "DeliveryFailures" in json.dumps(a["Properties"].get("Metrics", ""))]
    (query,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert query["Expression"] == "SELECT SUM(DeliveryFailures) FROM SCHEMA(mailgate, service, Target)"
    assert alarm["Threshold"] == {"Ref": "DeliveryFailuresAlarmThreshold"}


def test_every_alarm_notifies_the_alarm_topic_and_its_threshold_is_a_documented_parameter(template):
    docs = (REPO / "docs/template.md").read_text() + (REPO / "docs/operations.md").read_text()
    for name, alarm in _alarms(template).items():
        p = alarm["Properties"]
        assert p["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert p["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert p.get("TreatMissingData") == "notBreaching", f"{name}: no data is no trouble"
        parameter = p["Threshold"]["Ref"]
        assert "Default" in template["Parameters"][parameter], parameter
        assert parameter in docs, f"{parameter} is not documented in docs/template.md or docs/operations.md"
        assert p.get("AlarmDescription"), f"{name}: say what it means and what to do"


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use_and_the_email_is_optional(template):
    topic = template["Resources"]["AlarmTopic"]["Properties"]
    key = template["Resources"][topic["KmsMasterKeyId"]["Ref"]]["Properties"]
    cloudwatch = [s for s in key["KeyPolicy"]["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch and set(cloudwatch[0]["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    sub = template["Resources"]["AlarmEmailSubscription"]
    assert sub["Condition"] == "HasAlarmEmail"
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    assert template["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}


@pytest.fixture(scope="module")
def dashboard(template):
    (res,) = _of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = res["Properties"]["DashboardBody"]["Fn::Sub"]
    # ${Resource} / ${Resource.Attr} / ${Parameter} as they will be substituted: names kept readable
    return json.loads(re.sub(r"\$\{([A-Za-z0-9:.]+)\}", lambda m: "0" if "Threshold" in m.group(1) else m.group(0), body))


def _series(dashboard, namespace, metric, stat=None):
    """(dimension value, widget stat) of every line of `metric` on the dashboard."""
    out = []
    for w in dashboard["widgets"]:
        props = w["properties"]
        for m in props.get("metrics", []):
            if m[:2] == [namespace, metric]:
                if stat is None or props.get("stat") == stat:
                    out.append(m[3] if len(m) > 3 and isinstance(m[3], str) else "")
    return out


def test_dashboard_shows_duration_p50_and_p99_errors_and_throttles_of_every_function(template, dashboard):
    functions = _of_type(template, "AWS::Serverless::Function", "AWS::Lambda::Function")
    for stat in ("p50", "p99"):
        shown = {v.strip("${}") for v in _series(dashboard, "AWS/Lambda", "Duration", stat)}
        assert not set(functions) - shown, f"Duration {stat} missing for {sorted(set(functions) - shown)}; {HOW}"
    for metric in ("Errors", "Throttles"):
        shown = {v.strip("${}") for v in _series(dashboard, "AWS/Lambda", metric)}
        assert not set(functions) - shown, f"{metric} missing for {sorted(set(functions) - shown)}; {HOW}"


def test_dashboard_shows_every_queue_depth(template, dashboard):
    queues = set(_of_type(template, "AWS::SQS::Queue"))
    shown = {v[2:-len(".QueueName}")] for v in _series(dashboard, "AWS/SQS", "ApproximateNumberOfMessagesVisible")}
    assert not queues - shown, f"queue depth missing for {sorted(queues - shown)}; {HOW}"


def test_dashboard_shows_every_routing_outcome_and_lists_every_alarm(template, dashboard):
    from mailgate import routing
    from mailgate.entrypoints._runtime import outcome_metric

    outcomes = {outcome_metric(k) for k in (*routing.KINDS, "failed")}
    shown = {m[1] for w in dashboard["widgets"] for m in w["properties"].get("metrics", [])
             if m[:1] == ["mailgate"] and m[1].startswith("Inbound")}
    assert outcomes <= shown, f"outcomes missing from the dashboard: {sorted(outcomes - shown)}"
    (widget,) = [w for w in dashboard["widgets"] if w["type"] == "alarm"]
    listed = {a[2:-len(".Arn}")] for a in widget["properties"]["alarms"]}
    assert listed == set(_alarms(template)), f"alarm widget out of step: {sorted(set(_alarms(template)) ^ listed)}"


def test_dashboard_shows_ses_rates_outbound_per_transport_and_fetch_lag(dashboard):
    assert _series(dashboard, "AWS/SES", "Reputation.BounceRate") and _series(dashboard, "AWS/SES", "Reputation.ComplaintRate")
    expressions = " ".join(m[0].get("expression", "") for w in dashboard["widgets"]
                           for m in w["properties"].get("metrics", []) if isinstance(m[0], dict))
    for metric in ("OutboundSent", "OutboundFailed"):
        assert f'MetricName="{metric}"' in expressions and "Transport" in expressions
        assert _emitted(metric)
    assert _series(dashboard, "mailgate", "FetchLagSeconds")
    (logs,) = [w for w in dashboard["widgets"] if w["type"] == "log"]
    assert "by mailbox" in logs["properties"]["query"] and "fetch_lag_seconds" in logs["properties"]["query"]
