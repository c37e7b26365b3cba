"""DKIM signing: every signature is checked by stock dkimpy.verify through its dnsfunc seam."""

import re
from unittest import mock

import dkim
import pytest

from mailgate import compose as C
from mailgate import dkim as D
from mailgate import keyring
from mailgate.errors import ConfigError
from mailgate_dev import fakes


@pytest.fixture(scope="module")
def rsa_key():
    return D.generate_key("rsa", 2048)


@pytest.fixture(scope="module")
def ed_key():
    return D.generate_key("ed25519")


def message(**over) -> C.Composed:
    data = {"idempotency_key": "k", "from": "Alice <alice@example.test>", "to": ["bob@example.org"],
            "subject": "Quarterly report", "text": "Numbers attached.\n", "html": "<p>Numbers</p>"}
    data.update(over)
    req = C.parse_request(data)
    return C.compose(req, author=req.author, message_id="<r1@example.test>", ref="r1",
                     attachments=[("q.csv", "text/csv", b"a,b\n1,2\n")])


def verify_nth(raw: bytes, idx: int, lookup) -> bool:
    """dkimpy's verify of the idx-th signature (raises on a broken one; False is what we assert)."""
    try:
        return dkim.DKIM(raw).verify(idx=idx, dnsfunc=lookup)
    except dkim.DKIMException:
        return False


def test_signed_message_verifies_and_a_tampered_copy_fails(rsa_key):
    raw = D.sign_message(message().raw, [D.SigningKey("example.test", "mg", rsa_key)])
    lookup = D.dnsfunc_for({"mg._domainkey.example.test": D.public_txt(rsa_key)})
    assert dkim.verify(raw, dnsfunc=lookup)
    assert not dkim.verify(raw.replace(b"Numbers attached.", b"Numbers attacked."), dnsfunc=lookup)
    assert not dkim.verify(raw.replace(b"Subject: Quarterly report", b"Subject: Quarterly rep0rt"), dnsfunc=lookup)


def test_signature_is_rsa_sha256_relaxed_with_from_oversigned(rsa_key):
    raw = D.sign_message(message().raw, [D.SigningKey("example.test", "mg", rsa_key)])
    sig = dkim.util.parse_tag_value(re.search(rb"DKIM-Signature: (.*?)\r\n(?! )", raw, re.S).group(1))
    assert sig[b"a"] == b"rsa-sha256" and sig[b"c"] == b"relaxed/relaxed"
    assert sig[b"d"] == b"example.test" and sig[b"s"] == b"mg"
    signed = [h.strip() for h in sig[b"h"].split(b":")]
    assert signed.count(b"from") == 2  # a second From added later breaks the signature
    for name in (b"subject", b"to", b"message-id", b"x-mailgate-id", b"content-type", b"mime-version"):
        assert name in signed


def test_added_from_header_breaks_an_oversigned_signature(rsa_key):
    raw = D.sign_message(message().raw, [D.SigningKey("example.test", "mg", rsa_key)])
    lookup = D.dnsfunc_for({"mg._domainkey.example.test": D.public_txt(rsa_key)})
    forged = raw.replace(b"From: Alice", b"From: Mallory <m@evil.example>\r\nFrom: Alice", 1)
    assert not dkim.verify(forged, dnsfunc=lookup)


def test_fast_path_produces_exactly_the_stock_dkimpy_signature(rsa_key):
    m = message()
    include = D.headers_to_sign(m.header_names)
    with mock.patch("time.time", return_value=1_780_000_000):
        stock = dkim.sign(m.raw, b"mg", b"example.test", D.private_pem(rsa_key).encode(),
                          include_headers=include, canonicalize=(b"relaxed", b"relaxed"))
    fast = D.sign_message(m.raw, [D.SigningKey("example.test", "mg", rsa_key)], timestamp=1_780_000_000)
    assert fast == stock + m.raw


def test_fast_ed25519_signature_equals_stock_dkimpy_with_pynacl(ed_key):
    import base64

    from cryptography.hazmat.primitives import serialization

    m = message()
    include = D.headers_to_sign(m.header_names)
    seed = ed_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    with mock.patch("time.time", return_value=1_780_000_000):
        stock = dkim.sign(m.raw, b"mge", b"example.test", base64.b64encode(seed), include_headers=include,
                          canonicalize=(b"relaxed", b"relaxed"), signature_algorithm=b"ed25519-sha256")
    fast = D.sign_message(m.raw, [D.SigningKey("example.test", "mge", ed_key)], timestamp=1_780_000_000)
    assert fast == stock + m.raw


def test_rsa_and_ed25519_signatures_both_verify(rsa_key, ed_key):
    keys = [D.SigningKey("example.test", "mg", rsa_key), D.SigningKey("example.test", "mg-ed25519", ed_key)]
    raw = D.sign_message(message().raw, keys)
    lookup = D.dnsfunc_for({"mg._domainkey.example.test": D.public_txt(rsa_key),
                            "mg-ed25519._domainkey.example.test": D.public_txt(ed_key)})
    d = dkim.DKIM(raw)
    assert d.verify(idx=0, dnsfunc=lookup) and d.signature_fields[b"a"] == b"rsa-sha256"
    assert d.verify(idx=1, dnsfunc=lookup) and d.signature_fields[b"a"] == b"ed25519-sha256"
    tampered = raw.replace(b"Numbers attached.", b"Numbers changed.")
    assert not verify_nth(tampered, 0, lookup)
    assert not verify_nth(tampered, 1, lookup)


def test_ses_mode_leaves_message_id_and_date_unsigned_so_ses_may_rewrite_them(rsa_key):
    raw = D.sign_message(message().raw, [D.SigningKey("example.test", "mg", rsa_key)], for_ses=True)
    lookup = D.dnsfunc_for({"mg._domainkey.example.test": D.public_txt(rsa_key)})
    rewritten = re.sub(rb"Message-ID: <[^>]+>", b"Message-ID: <0100018f@email.amazonses.com>", raw)
    rewritten = re.sub(rb"Date: [^\r]+", b"Date: Fri, 27 Nov 2026 10:00:00 +0000", rewritten)
    assert rewritten != raw
    assert dkim.verify(rewritten, dnsfunc=lookup)


def test_non_ascii_message_signs_and_verifies(rsa_key):
    m = message(**{"from": "Ævar <alice@example.test>", "subject": "Réunion", "text": "Grüße\n", "to": ["jösé@example.org"]})
    raw = D.sign_message(m.raw, [D.SigningKey("example.test", "mg", rsa_key)])
    assert dkim.verify(raw, dnsfunc=D.dnsfunc_for({"mg._domainkey.example.test": D.public_txt(rsa_key)}))


def test_dns_record_text_carries_the_public_key_in_255_byte_strings(rsa_key):
    line = D.dns_record("example.test", "mg", rsa_key)
    assert line.startswith("mg._domainkey.example.test. 3600 IN TXT ")
    strings = re.findall(r'"([^"]*)"', line)
    assert all(len(s) <= 255 for s in strings) and len(strings) >= 2
    value = "".join(strings)
    raw = D.sign_message(message().raw, [D.SigningKey("example.test", "mg", rsa_key)])
    assert dkim.verify(raw, dnsfunc=D.dnsfunc_for({"mg._domainkey.example.test": value}))
    assert D.public_txt(D.generate_key("ed25519")).startswith("v=DKIM1; k=ed25519; p=")


def container_with_keys(**keys):
    c = fakes.in_memory()
    for secret_id, key in keys.items():
        c.secrets.put(secret_id, D.private_pem(key))
    return c


def test_domain_own_key_is_preferred_over_the_gateway_shared_key(rsa_key):
    other = D.generate_key("rsa", 1024)
    c = container_with_keys()
    c.secrets.put("mailgate/dkim/example.test/mg", D.private_pem(rsa_key))       # the gateway's shared key
    c.secrets.put("mailgate/dkim/customer.example/mg", D.private_pem(other))     # the domain's own
    (k,) = c.signing_keys.keys_for("customer.example", "mg")
    assert (k.domain, k.selector, k.source) == ("customer.example", "mg", "mailgate/dkim/customer.example/mg")


def test_gateway_shared_key_signs_for_a_customer_domain_under_the_cnamed_selector(rsa_key, ed_key):
    c = container_with_keys()
    c.secrets.put("mailgate/dkim/example.test/mg", D.private_pem(rsa_key))        # gateway domain = example.test
    c.secrets.put("mailgate/dkim/example.test/mg-ed25519", D.private_pem(ed_key))
    keys = c.signing_keys.keys_for("customer.example", "mg")
    assert [(k.domain, k.selector, k.algorithm) for k in keys] == [
        ("customer.example", "mg", "rsa-sha256"), ("customer.example", "mg-ed25519", "ed25519-sha256")]
    raw = D.sign_message(message(**{"from": "c@customer.example"}).raw, keys)
    # the customer's CNAME makes mg._domainkey.customer.example answer with the gateway's record
    lookup = D.dnsfunc_for({"mg._domainkey.customer.example": D.public_txt(rsa_key),
                            "mg-ed25519._domainkey.customer.example": D.public_txt(ed_key)})
    assert verify_nth(raw, 0, lookup) and verify_nth(raw, 1, lookup)


def test_missing_key_is_a_config_error_that_says_how_to_make_one():
    c = container_with_keys()
    with pytest.raises(ConfigError) as e:
        c.signing_keys.keys_for("customer.example", "mg")
    assert e.value.code == "dkim-key-missing"
    assert "mailgate dkim keygen customer.example" in str(e.value)


def test_keys_are_read_from_the_secret_store_once_and_cached(rsa_key):
    c = container_with_keys()
    c.secrets.put("mailgate/dkim/example.test/mg", D.private_pem(rsa_key))
    reads = []
    real_get = c.secrets.get
    c.secrets.get = lambda sid: reads.append(sid) or real_get(sid)
    for _ in range(5):
        c.signing_keys.keys_for("example.test", "mg")
    # the RSA key and the (absent) Ed25519 key: each looked up once, the absence cached too
    assert sorted(reads) == ["mailgate/dkim/example.test/mg", "mailgate/dkim/example.test/mg-ed25519"]


def test_cached_key_is_reloaded_after_its_time(rsa_key):
    now = [0.0]
    c = container_with_keys()
    c.secrets.put("mailgate/dkim/example.test/mg", D.private_pem(rsa_key))
    cache = keyring.KeyCache(c.secrets, ttl=60, clock=lambda: now[0])
    cache.get("mailgate/dkim/example.test/mg")
    now[0] = 59
    cache.get("mailgate/dkim/example.test/mg")
    assert cache.loads == 1
    now[0] = 61
    cache.get("mailgate/dkim/example.test/mg")
    assert cache.loads == 2


def test_unreadable_key_is_a_config_error():
    with pytest.raises(ConfigError, match="mailgate dkim keygen"):
        D.load_private_key("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")


from hypothesis import given, settings, strategies as st  # noqa: E402

_pieces = st.lists(st.sampled_from([b"a", b"b", b" ", b"  ", b"\t", b"\r\n", b"\n", b"x y", b" \r\n", b"\r\n\r\n", b"\r"]),
                   max_size=40).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(_pieces)
def test_fast_body_canonicalization_equals_dkimpy(body):
    for c in (b"relaxed/relaxed", b"simple/simple", b"relaxed/simple"):
        policy = dkim.CanonicalizationPolicy.from_c_value(c)
        assert D.canonicalize_body(policy, body) == policy.canonicalize_body(body)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"Subject", b"X-A ", b"FROM"]), _pieces), max_size=5))
def test_fast_header_canonicalization_equals_dkimpy(headers):
    for c in (b"relaxed/relaxed", b"simple/simple"):
        policy = dkim.CanonicalizationPolicy.from_c_value(c)
        assert D.canonicalize_headers(policy, headers) == policy.canonicalize_headers(headers)
