"""dkim.dnsfunc_from_resolver: dkimpy's key lookup through the resolver seam of the DNS checker."""

import dkim
import pytest

from mailgate import compose as C
from mailgate import dkim as D
from mailgate.dnsadvice.resolver import Answer


class FakeResolver:
    """Answers TXT lookups from a table; records what was asked."""

    def __init__(self, answers: dict[str, Answer]):
        self.answers, self.asked, self.queries = answers, [], 0

    def query(self, name, rtype):
        self.asked.append((name, rtype))
        self.queries += 1
        key = name.rstrip(".").lower()
        return self.answers.get(key, Answer(key, rtype, error="nxdomain"))


@pytest.fixture(scope="module")
def rsa_key():
    return D.generate_key("rsa", 2048)


@pytest.fixture(scope="module")
def signed(rsa_key):
    req = C.parse_request({"idempotency_key": "k", "from": "Alice <alice@example.test>", "to": ["bob@example.org"],
                           "subject": "Report", "text": "Numbers.\n"})
    m = C.compose(req, author=req.author, message_id="<r1@example.test>", ref="r1")
    return D.sign_message(m.raw, [D.SigningKey("example.test", "mg", rsa_key)])


def test_key_the_resolver_finds_verifies_the_signature_and_a_tampered_copy_fails(rsa_key, signed):
    name = "mg._domainkey.example.test"
    resolver = FakeResolver({name: Answer(name, "TXT", (D.public_txt(rsa_key),))})
    lookup = D.dnsfunc_from_resolver(resolver)
    assert dkim.verify(signed, dnsfunc=lookup)
    assert not dkim.verify(signed.replace(b"Numbers.", b"Numb3rs."), dnsfunc=lookup)
    assert {(n.rstrip("."), t) for n, t in resolver.asked} == {(name, "TXT")}


@pytest.mark.parametrize("error", ["nxdomain", "servfail", "timeout"])
def test_a_failed_key_lookup_fails_verification_without_raising(signed, error):
    name = "mg._domainkey.example.test"
    lookup = D.dnsfunc_from_resolver(FakeResolver({name: Answer(name, "TXT", error=error)}))
    assert not dkim.verify(signed, dnsfunc=lookup)


def test_a_key_of_another_pair_does_not_verify(signed):
    name = "mg._domainkey.example.test"
    other = D.public_txt(D.generate_key("rsa", 1024))
    assert not dkim.verify(signed, dnsfunc=D.dnsfunc_from_resolver(FakeResolver({name: Answer(name, "TXT", (other,))})))
