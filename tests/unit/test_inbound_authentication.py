"""What SES's authentication verdicts change: mail whose sender address is forged (SPF, DKIM and
DMARC all FAIL; or just the verdict that covers the address in question) counts toward no one's
loop limit and is never answered (RFC 3834 §4; backscatter)."""

from __future__ import annotations

from .inbound_support import answers, deliver, mail, stack

FORGED = {"spf": "FAIL", "dkim": "FAIL", "dmarc": "FAIL", "dmarc_policy": "none",
          "spam": "PASS", "virus": "PASS"}
GENUINE = {"spf": "PASS", "dkim": "PASS", "dmarc": "PASS", "dmarc_policy": "none",
           "spam": "PASS", "virus": "PASS"}


def test_spoofed_mail_from_the_victim_does_not_make_the_victims_real_mail_a_loop():
    c = stack()
    victim = "Vic Tim <victim@customer.test>"
    spoofed = [deliver(c, mail(frm=victim), verdicts=FORGED) for _ in range(20)]
    real = deliver(c, mail(frm=victim, subject="My real order"), verdicts=GENUINE)

    assert {r.outcome for r in spoofed} == {"new-record"}  # delivered (policy none), counted for no one
    assert "not counted toward the loop limit" in " ".join(spoofed[0].detail["route"]["notes"])
    assert real.outcome == "new-record", real.reason
    for _ in range(19):
        deliver(c, mail(frm=victim), verdicts=GENUINE)
    assert deliver(c, mail(frm=victim), verdicts=GENUINE).outcome == "loop"  # the genuine mail still counts


def test_a_forged_from_alone_is_not_counted_even_when_the_envelope_passes_spf():
    """An attacker sends from their own domain (SPF PASS) with From: victim@ (DMARC FAIL): the
    counter is the From address's, and DMARC is what says that From is not the victim's."""
    c = stack(loop_limit=3)
    forged_from = {**GENUINE, "dmarc": "FAIL", "dkim": "GRAY"}
    for _ in range(5):
        deliver(c, mail(frm="victim@customer.test", headers={"Return-Path": "<eve@attacker.test>"}),
                verdicts=forged_from)
    assert deliver(c, mail(frm="victim@customer.test"), verdicts=GENUINE).outcome == "new-record"


def test_a_spoofed_envelope_sender_to_an_unknown_alias_gets_no_polite_answer():
    c = stack()
    rec = deliver(c, mail(to="nobody@example.test", frm="victim@customer.test",
                          headers={"Return-Path": "<victim@customer.test>"}),
                  recipients=["nobody@example.test"], verdicts=FORGED)

    assert rec.outcome == "unknown-recipient" and answers(c) == []
    assert any("SPF FAIL" in n for n in rec.detail["route"]["notes"]), rec.detail["route"]["notes"]


def test_an_answer_to_an_envelope_sender_that_fails_spf_is_not_sent_whatever_dmarc_says():
    c = stack()
    deliver(c, mail(to="nobody@example.test", headers={"Return-Path": "<victim@customer.test>"}),
            recipients=["nobody@example.test"], verdicts={**GENUINE, "spf": "FAIL"})
    assert answers(c) == []


def test_a_rejected_sender_whose_address_is_forged_gets_no_answer():
    c = stack()
    rec = deliver(c, mail(to="vip@example.test", headers={"Return-Path": "<victim@customer.test>"}),
                  recipients=["vip@example.test"], verdicts=FORGED)
    assert rec.outcome == "rejected" and answers(c) == []


def test_authenticated_or_unjudged_mail_is_counted_and_answered_as_before():
    for verdicts in (GENUINE, None, {**GENUINE, "dkim": "FAIL"}, {"spf": "GRAY", "dkim": "GRAY", "dmarc": "GRAY"}):
        c = stack(loop_limit=2)
        outcomes = [deliver(c, mail(), verdicts=verdicts).outcome for _ in range(3)]
        assert outcomes == ["new-record", "new-record", "loop"], verdicts
        deliver(c, mail(to="nobody@example.test"), recipients=["nobody@example.test"], verdicts=verdicts)
        assert len(answers(c)) == 1, verdicts
