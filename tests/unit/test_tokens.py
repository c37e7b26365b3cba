from mailgate import tokens

KEY = b"k" * 32


def test_reply_address_round_trips_and_survives_lower_and_upper_case():
    addr = tokens.reply_address(KEY, "catchall", "example.test", "abcdefghijklmnop")
    assert tokens.parse_reply_address(KEY, addr) == "abcdefghijklmnop"
    assert tokens.parse_reply_address(KEY, addr.upper()) == "abcdefghijklmnop"
    assert len(addr.partition("@")[0]) <= 64


def test_altered_or_forged_reply_token_is_refused():
    addr = tokens.reply_address(KEY, "catchall", "example.test", "abcdefghijklmnop")
    altered = addr.replace("abcdefghijklmnop", "abcdefghijklmnoq")
    assert tokens.parse_reply_address(KEY, altered) is None
    assert tokens.parse_reply_address(b"other-key", addr) is None
    assert tokens.parse_reply_address(KEY, "catchall+abcdefghijklmnop.aaaaaaaaaaaaaaaa@example.test") is None


def test_hostile_local_parts_are_refused_without_error():
    for hostile in ["", "@", "catchall+@x", "catchall+.@x", "catchall+" + "a" * 500 + "@x",
                    "catchall+a\r\nb.cccc@x", "catchall+\u00e9t\u00e9.x@x"]:
        assert tokens.parse_reply_address(KEY, hostile) is None


def test_verp_token_names_message_and_recipient_and_reply_token_is_not_a_verp_token():
    addr = tokens.verp_address(KEY, "bounce", "example.test", "abcdefghijklmnop", 12)
    assert tokens.parse_verp_address(KEY, addr) == ("abcdefghijklmnop", 12)
    reply = tokens.reply_address(KEY, "catchall", "example.test", "abcdefghijklmnop")
    assert tokens.parse_verp_address(KEY, reply) is None


def test_a_non_ascii_tag_is_not_genuine_and_raises_nothing():
    assert tokens.check_token(KEY, "reply", "abc.\u00e9t\u00e9") is None
    assert tokens.parse_reply_address(KEY, "catchall+abc.\u00e9t\u00e9@example.test") is None
    assert tokens.parse_verp_address(KEY, "bounce+abc-0.\u00e9t\u00e9@example.test") is None


# --- keys with ids, rotation and the grace period ------------------------------------------------

NOW = 1_800_000_000.0
DAY = 86400


def _keys(secret: str = '{"current": "aa", "aa": "first-key-0123456789abcdef"}') -> tokens.TokenKeys:
    return tokens.parse_secret(secret)


def test_new_tokens_name_their_key_fit_64_characters_and_survive_case_folding():
    keys = _keys()
    reply = tokens.reply_address(keys, "catchall", "example.test", "abcdefghijklmnop")
    verp = tokens.verp_address(keys, "bounce", "example.test", "abcdefghijklmnop", 99_999)
    assert reply.partition("+")[2].split(".")[1] == "aa"
    for addr in (reply, verp):
        assert len(addr.partition("@")[0]) <= 64
    assert tokens.parse_reply_address(keys, reply.upper()) == "abcdefghijklmnop"
    assert tokens.parse_verp_address(keys, verp.upper()) == ("abcdefghijklmnop", 99_999)


def test_after_a_rotation_both_keys_verify_until_the_grace_period_ends():
    old = _keys()
    sent_before = tokens.reply_address(old, "catchall", "example.test", "threadoldkey0000")
    new = tokens.rotate(old, grace_days=30, now=NOW)
    sent_after = tokens.reply_address(new, "catchall", "example.test", "threadnewkey0000")

    assert new.current.kid == "ab" and new.previous.kid == "aa"
    assert tokens.parse_reply_address(new, sent_before, now=NOW + 29 * DAY) == "threadoldkey0000"
    assert tokens.parse_reply_address(new, sent_after, now=NOW + 29 * DAY) == "threadnewkey0000"
    assert tokens.parse_reply_address(new, sent_before, now=NOW + 31 * DAY) is None
    assert tokens.parse_reply_address(new, sent_after, now=NOW + 3650 * DAY) == "threadnewkey0000"
    # the new key never verifies a token of the old key, nor the other way round
    assert tokens.parse_reply_address(old, sent_after) is None


def test_two_keys_at_most_are_valid_at_once():
    first = _keys()
    token = tokens.reply_address(first, "catchall", "example.test", "threadfirstkey00")
    third = tokens.rotate(tokens.rotate(first, now=NOW), now=NOW + DAY)
    assert [third.current.kid, third.previous.kid] == ["ac", "ab"]
    assert tokens.parse_reply_address(third, token, now=NOW + 2 * DAY) is None


def test_a_token_naming_another_key_id_is_not_genuine():
    keys = _keys()
    token = tokens.reply_address(keys, "catchall", "example.test", "abcdefghijklmnop")
    base, payload, kid, tag = token.partition("@")[0].replace("+", ".").split(".")
    assert tokens.parse_reply_address(keys, f"{base}+{payload}.ab.{tag}@example.test") is None
    assert tokens.parse_reply_address(keys, f"{base}+{payload}.{tag}@example.test") is None


def test_tokens_of_a_plain_text_secret_keep_working_through_the_first_rotation():
    legacy = tokens.parse_secret("the-key-before-key-ids-existed")
    in_circulation = tokens.verp_address(legacy, "bounce", "example.test", "abcdefghijklmnop", 1)
    assert in_circulation.count(".") == 2  # PAYLOAD.TAG@domain.test: no key id
    rotated = tokens.parse_secret(tokens.rotate(legacy, grace_days=10, now=NOW).to_secret())

    assert rotated.current.kid == "aa" and rotated.previous.kid == tokens.LEGACY
    assert tokens.parse_verp_address(rotated, in_circulation, now=NOW + 9 * DAY) == ("abcdefghijklmnop", 1)
    assert tokens.parse_verp_address(rotated, in_circulation, now=NOW + 11 * DAY) is None
    assert tokens.parse_verp_address(rotated, tokens.verp_address(rotated, "bounce", "example.test",
                                                                  "abcdefghijklmnop", 1)) == ("abcdefghijklmnop", 1)


def test_a_secret_mailgate_did_not_write_is_refused_with_the_reason():
    import pytest

    for bad in ('{"current": "aa"}', '{"current": "A1", "A1": "0123456789abcdefgh"}', "{not json",
                '{"current": "aa", "aa": "short"}'):
        with pytest.raises(ValueError):
            tokens.parse_secret(bad)
