"""The new text of a reply: quoted history and signature trimmed (pure).

mail-parser-reply does the work where it finds something (measured on real reply layouts,
docs/inbound.md); our own trimmer cuts at the first quote header, drops '>' lines and the
signature, and takes over where the library finds nothing or fails.
"""

from __future__ import annotations

import re

#: Replies longer than this are read up to here (the new text of a reply comes first).
MAX_REPLY_INPUT = 200_000
REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl"]

# Leading white space is [^\S\n]*, not \s*: a pattern anchored at each line start must not run
# across the following blank lines, or a text of many blank lines takes quadratic time.
_REPLY_HEADER = re.compile(
    r"^[^\S\n]*(?:"
    r"On\b.{0,200}\bwrote:\s*$"                              # Gmail, Apple Mail, Thunderbird (en)
    r"|Le\b.{0,200}\ba écrit\s?:\s*$"                        # fr
    r"|Am\b.{0,200}\bschrieb.{0,80}:\s*$"                    # de
    r"|El\b.{0,200}\bescribió:\s*$"                          # es
    r"|-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original)\s*-{2,}"
    r"|_{10,}\s*$"                                            # Outlook separator line
    r"|(?:From|De|Von|Van)\s?:\s.+\n\s*\*?(?:Sent|Date|To|Gesendet|Datum|An|Envoy[ée]|Enviado|Para|À|Subject|Betreff|Objet)\s?:"  # Outlook header block
    r")", re.I | re.M)
_SIGNATURE = re.compile(r"^-- ?$", re.M)  # RFC 3676 §4.3 signature separator "-- "
_MOBILE_SIG = re.compile(r"^[^\S\n]*(Sent from my \w+|Get Outlook for \w+|Envoyé de mon \w+|Von meinem \w+ gesendet)",
                         re.I | re.M)


def trim_reply(text: str) -> str:
    """Our own trimmer: cut at the first quote header, drop '>' lines, cut the signature."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    m = _REPLY_HEADER.search(text)
    if m:
        text = text[:m.start()]
    lines = [line for line in text.split("\n") if not line.lstrip().startswith(">")]
    text = "\n".join(lines)
    for pattern in (_SIGNATURE, _MOBILE_SIG):
        m = pattern.search(text)
        if m and m.start() > 0:
            text = text[:m.start()]
    return text.strip()


_PARSER_CACHE: dict[str, object] = {}


def _library_reply(text: str) -> str | None:
    """mail-parser-reply's latest reply, with its compiled regexes built once per process."""
    # Imported on first use: it takes ~40 ms to import, which only the messages that need a
    # reply text should pay (not every cold start of a function that imports this module).
    try:
        from mailparser_reply.parser import EmailMessage
    except ImportError:  # pragma: no cover - it is a runtime dependency
        return None
    template = _PARSER_CACHE.get("template")
    if template is None:
        template = EmailMessage(text="", languages=list(REPLY_LANGUAGES))
        _ = template.HEADER_REGEX, template.SIGNATURE_REGEX, template.DISCLAIMERS_REGEX
        _PARSER_CACHE["template"] = template
    msg = EmailMessage(text=text, languages=list(REPLY_LANGUAGES),
                       _header_regex=template._header_regex, _signature_regex=template._signature_regex,
                       _disclaimers_regex=template._disclaimers_regex)
    return msg.read().latest_reply


def extract_reply(text: str, *, method: str = "auto") -> str:
    """The reply's own words. `auto` uses mail-parser-reply and falls back to `trim_reply`
    where the library finds nothing or fails; `library` / `own` force one (for measuring)."""
    if not text:
        return ""
    text = text[:MAX_REPLY_INPUT]
    if method == "own":
        return trim_reply(text)
    if method == "auto":
        # the quoted history is not the reply: cut it first, so the library's many patterns run
        # over the few new lines only (its cost grows with the length of the text)
        m = _REPLY_HEADER.search(text)
        if m:
            text = text[:m.start()]
    try:
        found = _library_reply(text)
    except Exception:  # noqa: BLE001 - regex libraries have failed on hostile input
        found = None
    if method == "library":
        return (found or "").strip()
    found = (found or "").strip()
    if not found:
        return trim_reply(text)
    # The library keeps lines quoted with '>' at the end of a top-posted reply in some layouts.
    own = trim_reply(found)
    return own or found
