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
