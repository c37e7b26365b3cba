"""Classification measured on the bounce corpus of 589 real bounces (+2 non-bounces), Sisimai's
"set-of-emails" under tests/data/bounces (see its README and licence)."""

from __future__ import annotations

import pytest

from mailgate.bounces import classify
from tests.bounce_scoring import corpus_dir, load_cases, ours, score

BAR = 95.0


@pytest.fixture(scope="module")
def measured():
    cases = load_cases()
    overall, per_system = score(cases, ours)
    return overall, per_system


def _why(overall):
    return "\n".join(f"{n}: {m}" for n, m in overall.misses[:40])


def test_corpus_is_all_there(measured):
    overall, _ = measured
    assert overall.total == 591  # 589 bounces, complaints, auto-replies + 2 ordinary messages


def test_kind_matches_on_at_least_95_percent(measured):
    overall, _ = measured
    assert overall.pct(overall.kind) >= BAR, _why(overall)


def test_number_of_failed_recipients_matches_on_at_least_95_percent(measured):
    overall, _ = measured
    assert overall.pct(overall.count) >= BAR, _why(overall)


def test_permanent_or_temporary_class_matches_on_at_least_95_percent(measured):
    overall, _ = measured
    assert overall.pct(overall.klass) >= BAR, _why(overall)


def _read(name: str) -> bytes:
    return (corpus_dir() / "messages" / name).read_bytes()


def _one(name: str):
    report = classify(_read(name))
    return report, [(r.address, r.permanent, r.status) for r in report.recipients]


def test_dsn_with_broken_mime_boundary_still_gives_the_recipient():
    report, rcpts = _one("rhost-google-02.eml")
    assert report.kind == "bounce"
    assert rcpts == [("neko-nyaan@example.org", True, "5.1.1")]


def test_dmarc_rejection_is_a_bounce_but_not_a_dead_address():
    report, rcpts = _one("lhost-dragonfly-01.eml")
    assert report.kind == "bounce" and report.recipients[0].reason == "authfailure"
    assert rcpts == [("pseudo-local-part@google.example.com", False, "5.7.26")]


def test_old_sendmail_naming_only_a_host_takes_the_recipient_from_the_original():
    report, rcpts = _one("lhost-sendmail-15.eml")
    assert report.kind == "bounce" and len(rcpts) == 1 and rcpts[0][1] is True


def test_arf_report_with_seven_complaining_recipients():
    report, rcpts = _one("arf-16.eml")
    assert report.kind == "complaint" and report.feedback_type == "abuse"
    assert len(rcpts) == 7 and {a for a, _, _ in rcpts} >= {"kijitora@example.com", "sabineko@example.com"}


def test_vacation_notice_is_an_auto_reply_not_a_bounce():
    report, _ = _one("rfc3834-01.eml")
    assert report.kind == "auto-reply"


def test_ses_notification_mailed_as_json_is_read():
    report, rcpts = _one("lhost-amazonses-09.eml")
    assert report.kind == "bounce" and rcpts == [("bounce@simulator.amazonses.com", True, "5.1.1")]
    assert classify(_read("lhost-amazonses-12.eml")).kind == "delivery-report"
    assert classify(_read("lhost-amazonses-11.eml")).kind == "complaint"


def test_exim_display_name_and_address_count_as_one_recipient():
    _, rcpts = _one("lhost-exim-52.eml")
    assert [a for a, _, _ in rcpts] == ["neko@example.net"]


def test_qmail_mixed_permanent_and_mailbox_full():
    report, rcpts = _one("lhost-qmail-17.eml")
    assert report.kind == "bounce" and sorted(p for _, p, _ in rcpts) == [False, True]


def test_message_that_attaches_another_message_is_normal():
    report = classify((corpus_dir() / "not-bounces" / "is-not-bounce-02.eml").read_bytes())
    assert report.kind == "normal" and report.recipients == []
