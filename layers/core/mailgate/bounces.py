"""Bounce, complaint and auto-reply classification: pure functions over raw bytes.

`classify(raw)` tells what a message that reached us is — a bounce (with its failed recipients),
a complaint (RFC 5965 ARF), an auto-reply (RFC 3834), a delivery-success report, or a normal
message — and never raises, whatever the bytes. It reads, in this order:

1. RFC 5965 feedback reports (`message/feedback-report`) -> complaint;
2. RFC 3464 delivery status notifications (`message/delivery-status`): one entry per recipient
   with Action / Status / Diagnostic-Code;
3. the non-standard bounce texts of mail systems that predate or ignore RFC 3464 (qmail, Exim,
   old Sendmail and Postfix, Exchange, Notes, Japanese carriers, ...): the failed addresses are
   read from the notification text (never from the quoted original), with flufl.bounce's
   detectors as one more source;
4. RFC 3834 auto-replies (`Auto-Submitted: auto-replied`, vacation subjects) — only when the
   message is not a bounce, since many mailers mark their bounces auto-replied too.

"permanent" means the *address* is dead (no such user, no such domain, moved): those are the
failures that justify suppressing an address after a single bounce. A 5xx that rejects the
message for its content, reputation, size or a full mailbox is recorded with its status but is
not permanent for the address (Sisimai's hard/soft split, which the shared corpus records).
"""

from __future__ import annotations

import codecs
import email
import email.utils
import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, Iterator

KINDS = ("normal", "bounce", "auto-reply", "complaint", "delivery-report")

#: reasons after which the address itself is gone (Sisimai's hard bounces)
HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved"})

_MAX_PARTS = 200          # a hostile message with thousands of parts is cut here
_MAX_TEXT = 200_000       # characters of notification text we read
_MAX_RECIPIENTS = 100


@dataclass
class BounceRecipient:
    address: str
    permanent: bool
    status: str = ""
    diagnostic: str = ""
    reason: str = ""
    action: str = "failed"

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "permanent": self.permanent, "status": self.status,
                "diagnostic": self.diagnostic, "reason": self.reason, "action": self.action}


@dataclass
class BounceReport:
    kind: str = "normal"
    recipients: list[BounceRecipient] = field(default_factory=list)
    feedback_type: str = ""
    original_message_id: str = ""
    original_mailgate_id: str = ""
    #: how the answer was found: "arf", "dsn", "text", "flufl", "headers", "ses", ""
    method: str = ""
    #: why classification gave up early (hostile or broken input); empty when all went well
    error: str = ""

    @property
    def failed(self) -> list[BounceRecipient]:
        return [r for r in self.recipients if r.action in ("failed", "delayed")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "recipients": [r.to_dict() for r in self.recipients],
            "feedback_type": self.feedback_type,
            "original_message_id": self.original_message_id,
            "original_mailgate_id": self.original_mailgate_id,
            "method": self.method,
            "error": self.error,
        }

    def inspect_dict(self) -> dict[str, Any]:
        """The shape `mailgate inspect --json` shows: {"kind": ..., "bounce": {...}}."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind != "normal":
            body = self.to_dict()
            body.pop("kind")
            out["bounce"] = body
        return out


# --------------------------------------------------------------------------------------------
# Entry point


def classify(raw: bytes) -> BounceReport:
    """Classify any bytes as a bounce / complaint / auto-reply / delivery report / normal mail."""
    try:
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        msg = email.message_from_bytes(bytes(raw))
        return _classify(msg)
    except Exception as exc:  # pragma: no cover - the last line of defence, exercised by fuzzing
        return BounceReport(kind="normal", error=f"unreadable message: {type(exc).__name__}: {exc}"[:300])


def _classify(msg: Message) -> BounceReport:
    parts = _Parts(msg)
    report = BounceReport()
    original = parts.original_headers()
    if original is not None:
        report.original_message_id = _clean_id(original.get("Message-ID", ""))
        report.original_mailgate_id = _clean_id(original.get("X-Mailgate-Id", ""))

    # 1. RFC 5965 ARF: a message/feedback-report part (or its fields in a text part).
    arf = parts.feedback_report()
    if arf is not None:
        _fill_complaint(report, msg, arf, original)
        return report

    # SES notifications delivered by e-mail (an SNS e-mail subscription): JSON in the body.
    ses = _ses_json_in_body(msg, parts)
    if ses is not None:
        return ses

    # Hotmail/Outlook.com JMRP and Apple's unsubscribe: complaints in a non-ARF shape.
    if msg.get("X-Apple-Unsubscribe", "").strip().lower() == "true":
        report.kind, report.method, report.feedback_type = "complaint", "headers", "opt-out"
        sender = _first_address(msg.get("From", ""))
        report.recipients = [BounceRecipient(sender, False, "", "X-Apple-Unsubscribe", "feedback", "complained")]
        return report
    if original is not None and original.get("X-HmXmrOriginalRecipient"):
        report.kind, report.method, report.feedback_type = "complaint", "jmrp", "abuse"
        addr = _first_address(original.get("X-HmXmrOriginalRecipient"))
        report.recipients = [BounceRecipient(addr, False, "", "Outlook.com junk report (JMRP)", "feedback",
                                             "complained")]
        return report

    # 2. RFC 3464: message/delivery-status.
    dsn = parts.delivery_status()
    bounce_like = _looks_like_bounce(msg, parts)
    if dsn:
        recipients = _dsn_recipients(dsn, parts)
        failed = [r for r in recipients if r.action in ("failed", "delayed")]
        if failed:
            report.kind, report.recipients, report.method = "bounce", failed, "dsn"
            return report
        delivered = [r for r in recipients if r.action in ("delivered", "relayed", "expanded")]
        if delivered:
            report.kind, report.recipients, report.method = "delivery-report", delivered, "dsn"
            return report

    auto = _auto_reply(msg)
    if auto and not bounce_like:
        report.kind, report.method = "auto-reply", "headers"
        sender = _first_address(msg.get("From", "")) or _first_address(msg.get("Return-Path", ""))
        if sender:
            report.recipients = [BounceRecipient(sender, False, "", auto, "vacation", "auto-replied")]
        return report

    # 3. non-standard bounce texts.
    if bounce_like or dsn:
        recipients = _text_recipients(msg, parts, original)
        method = "text"
        if not recipients:
            recipients = _flufl_recipients(msg, parts)
            method = "flufl"
        if recipients:
            report.kind, report.recipients, report.method = "bounce", recipients[:_MAX_RECIPIENTS], method
            return report
        # A bounce that names nobody: still a bounce (never routed as a reply), no recipient.
        report.kind, report.method = "bounce", "headers"
        return report

    if auto:
        report.kind, report.method = "auto-reply", "headers"
        return report
    return report


# --------------------------------------------------------------------------------------------
# MIME walking and decoding


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes to text in the declared charset; an unknown or lying charset never fails."""
    for cs in (charset, "utf-8"):
        if not cs:
            continue
        try:
            codecs.lookup(cs)
            return data.decode(cs)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return data.decode("latin-1")


def _fix_jis(text: str) -> str:
    """ISO-2022-JP text that reached us undecoded (no charset on its part): decode it."""
    if "\x1b$" not in text:
        return text
    try:
        return text.encode("latin-1").decode("iso-2022-jp")
    except (UnicodeError, LookupError):
        return text


def _part_text(part: Message) -> str:
    return _fix_jis(_part_text_raw(part))


def _part_text_raw(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        p = part.get_payload()
        if isinstance(p, str):
            return p[:_MAX_TEXT]
        if isinstance(p, list):
            text = "\n\n".join(_message_text(x) for x in p if isinstance(x, Message))[:_MAX_TEXT]
            cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
            if cte in ("quoted-printable", "base64"):
                # message/delivery-status parsed as header blocks before its encoding was undone.
                import base64
                import quopri

                try:
                    data = quopri.decodestring(text.encode("latin-1", "replace")) if cte == "quoted-printable" \
                        else base64.b64decode("".join(text.split()) + "==", validate=False)
                    text = _decode_bytes(data, None)
                except Exception:
                    pass
            return text
        return ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    text = _decode_bytes(payload[: _MAX_TEXT * 2], charset)
    if part.get_content_subtype() == "html":
        text = _html_to_text(text)
    return text[:_MAX_TEXT]


def _message_text(m: Message) -> str:
    try:
        return m.as_string()
    except Exception:
        return "\n".join(f"{k}: {v}" for k, v in m.items())


_TAG = re.compile(r"<(script|style)\b.*?</\1>|<[^>]{0,2000}>", re.S | re.I)


def _html_to_text(html: str) -> str:
    import html as _html

    text = re.sub(r"<br\s*/?>|</p>|</div>|</tr>|</li>", "\n", html, flags=re.I)
    return _html.unescape(_TAG.sub(" ", text))


class _Parts:
    """The parts of a message, split into the notification and the quoted original."""

    def __init__(self, msg: Message):
        self.msg = msg
        self.texts: list[str] = []          # notification text parts, in order
        self.dsn_parts: list[Message] = []
        self.arf_parts: list[Message] = []
        self.original_parts: list[Message] = []   # message/rfc822 or text/rfc822-headers
        self._walk(msg, 0)

    def _walk(self, part: Message, depth: int) -> None:
        if depth > 20 or len(self.texts) + len(self.original_parts) > _MAX_PARTS:
            return
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status",
                     "text/delivery-status"):
            self.dsn_parts.append(part)
            return
        if ctype == "message/feedback-report":
            self.arf_parts.append(part)
            return
        if ctype in ("message/rfc822", "message/global", "text/rfc822-headers",
                     "message/rfc822-headers", "message/global-headers", "message/partial"):
            self.original_parts.append(part)
            return
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                for sub in payload[:_MAX_PARTS]:
                    if isinstance(sub, Message):
                        self._walk(sub, depth + 1)
            return
        if part.get_content_maintype() == "multipart":
            # Broken MIME (the boundary never occurs): read the body as text.
            self.texts.append(_part_text(part))
            return
        if part.get_content_maintype() == "text" or ctype == "application/octet-stream" and depth == 0:
            self.texts.append(_part_text(part))

    def body_text(self) -> str:
        return "\n".join(self.texts)[:_MAX_TEXT]

    def original_headers(self) -> Message | None:
        """Headers of the quoted original message, from a MIME part or from the text."""
        for part in self.original_parts:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            text = _part_text(part)
            if text:
                try:
                    return email.message_from_string(text.lstrip())
                except Exception:
                    continue
        _, quoted = split_notification(self.body_text())
        if quoted:
            try:
                return email.message_from_string(quoted)
            except Exception:
                return None
        return None

    def feedback_report(self) -> dict[str, list[str]] | None:
        for part in self.arf_parts:
            return _fields(_part_text(part))
        # Some reporters put the ARF fields in a text part (or the top-level body).
        if self.msg.get_content_type() == "multipart/report" and \
                (self.msg.get_param("report-type") or "").lower() == "feedback-report":
            for text in self.texts:
                f = _fields(text)
                if "feedback-type" in f:
                    return f
        for text in self.texts[:3]:
            f = _fields(text)
            if "feedback-type" in f and ("user-agent" in f or "version" in f):
                return f
        return None

    def delivery_status(self) -> str:
        if self.dsn_parts:
            return "\n\n".join(_part_text(p) for p in self.dsn_parts)
        # RFC 3464 fields pasted into a text part by MTAs that do not build multipart/report.
        for text in self.texts:
            m = _INLINE_DSN.search(text)
            if m and re.search(r"^(Status|Action):", text[m.start():], re.M | re.I):
                return text[m.start():]
        return ""


_INLINE_DSN = re.compile(r"^(Final|Original)-Recipient:\s*\S", re.M | re.I)


def _fields(text: str) -> dict[str, list[str]]:
    """Header-style fields (unfolded) of a block of text: name (lower) -> values."""
    out: dict[str, list[str]] = {}
    for name, value in _field_lines(text):
        out.setdefault(name, []).append(value)
    return out


_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,60}):[ \t]*(.*)$")


def _field_lines(text: str) -> Iterator[tuple[str, str]]:
    name, value = None, ""
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and name is not None:
            value += " " + line.strip()
            continue
        if name is not None:
            yield name, value.strip()
            name = None
        m = _FIELD.match(line)
        if m:
            name, value = m.group(1).lower(), m.group(2)
        elif not line.strip():
            yield "", ""  # block separator
    if name is not None:
        yield name, value.strip()


def _clean_id(value: Any) -> str:
    value = str(value or "").strip()
    m = re.search(r"<([^<>\s]+)>", value)
    return (m.group(1) if m else value.strip("<> ")).strip()[:998]


# --------------------------------------------------------------------------------------------
# Addresses

_ADDR = re.compile(
    r"(?<![\w.+=/-])([A-Za-z0-9!#$%&'*+/=?^_`{|}~][A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{0,63}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+)"
)

_DAEMON_LOCALS = {"mailer-daemon", "postmaster", "mail-daemon", "maildaemon", "mailerdaemon",
                  "mailer_daemon", "mmdf", "mail_admin", "bounce", "bounces", "no-reply", "noreply"}


#: list-manager control addresses (RFC 2142 -request, fml's -ctl/-admin, owner-): never a recipient
_LIST_CONTROL = re.compile(r"-(ctl|request|admin|owner)$|^owner-", re.I)


def _norm_address(address: str) -> str:
    address = address.strip().strip("<>\"'[](),;:.").strip()
    if address.lower().startswith(("rfc822;", "rfc822 ;")):
        address = address.split(";", 1)[1].strip().strip("<>")
    return address.lower()


def _first_address(value: Any) -> str:
    try:
        _, addr = email.utils.parseaddr(str(value or ""))
    except Exception:
        addr = ""
    if addr and "@" in addr:
        return _norm_address(addr)
    m = _ADDR.search(str(value or ""))
    return _norm_address(m.group(1)) if m else ""


def _all_addresses(value: Any) -> list[str]:
    return [_norm_address(m.group(1)) for m in _ADDR.finditer(str(value or ""))]


# --------------------------------------------------------------------------------------------
# RFC 5965 complaints


def _fill_complaint(report: BounceReport, msg: Message, arf: dict[str, list[str]],
                    original: Message | None) -> None:
    report.kind, report.method = "complaint", "arf"
    report.feedback_type = (arf.get("feedback-type", [""])[0] or "abuse").strip().lower()[:40]
    addresses: list[str] = []
    for name in ("original-rcpt-to", "removal-recipient"):
        for value in arf.get(name, []):
            addresses += _all_addresses(value)
    if not addresses and original is not None:
        # RFC 6650: reports should say who complained; many only quote the original's To.
        addresses = _all_addresses(original.get("To", ""))[:1]
    if not addresses:
        addresses = _all_addresses(msg.get("X-Original-To", "")) or [""]
    seen: set[str] = set()
    for a in addresses:
        if a in seen:
            continue
        seen.add(a)
        report.recipients.append(BounceRecipient(a, False, "", report.feedback_type, "feedback", "complained"))
    if not report.original_message_id and original is None:
        for value in arf.get("original-message-id", []):
            report.original_message_id = _clean_id(value)


# --------------------------------------------------------------------------------------------
# RFC 3464 delivery status notifications


def _dsn_recipients(text: str, parts: _Parts) -> list[BounceRecipient]:
    """Per-recipient blocks of a message/delivery-status body (RFC 3464 §2.3)."""
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for name, value in _field_lines(text):
        if not name:
            if current:
                records.append(current)
                current = {}
            continue
        if name in ("final-recipient", "original-recipient") and name in current:
            records.append(current)
            current = {}
        current.setdefault(name, value)
    if current:
        records.append(current)

    out: list[BounceRecipient] = []
    seen: set[str] = set()
    for rec in records:
        raw_addr = rec.get("final-recipient") or rec.get("original-recipient") or rec.get("x-actual-recipient")
        if raw_addr is None:
            continue
        address = _dsn_address(raw_addr)
        if not address and rec.get("original-recipient"):
            address = _dsn_address(rec["original-recipient"])
        if not address:
            # "Final-Recipient: rfc822; @host" (old Sendmail): the original's To names it.
            original = parts.original_headers()
            tos = _all_addresses(original.get("To", "")) if original is not None else []
            address = tos[0] if len(tos) == 1 else ""
        action = (rec.get("action", "").split() or [""])[0].lower().strip(".;")
        status = _find_status(rec.get("status", ""))
        diagnostic = _diag_clean(rec.get("diagnostic-code", ""))
        if not action:
            action = "failed" if status[:1] in ("4", "5") or diagnostic else "delivered" if status[:1] == "2" else ""
        if action in ("failure",):
            action = "failed"
        if action == "deliverable" or status[:1] == "2" and action not in ("relayed", "expanded"):
            action = "delivered"  # Sendmail says "deliverable" for verified addresses (-bv)
        if action == "delayed" and status[:1] == "5":
            action = "failed"
        if not address:
            continue
        if address in seen:
            # The same address twice (original + final): keep the first.
            continue
        seen.add(address)
        if action in ("failed", "delayed"):
            text_diag = diagnostic or _diagnostic_near(parts.body_text(), address)
            if (status in ("", "5.0.0", "4.0.0") or status != _find_status(text_diag) and
                    _SES_RELAYED.match(_squash(rec.get("diagnostic-code", "")).split(";", 1)[-1].strip())) \
                    and _find_status(text_diag):
                status = _find_status(text_diag)
            near = _diagnostic_near(parts.body_text(), address, fallback=False)
            # The whole text speaks for this recipient only when the DSN says nothing itself.
            reason = reason_for(text_diag, status, parts.body_text(), near, address,
                                context_reason=not diagnostic)
            out.append(BounceRecipient(address, is_permanent(reason, status), status, text_diag[:1000],
                                       reason, action))
        else:
            out.append(BounceRecipient(address, False, status, diagnostic[:1000], "delivered", action or "delivered"))
    return out


def _dsn_address(value: str) -> str:
    value = value.strip()
    if ";" in value:
        value = value.split(";", 1)[1]
    m = _ADDR.search(value)
    return _norm_address(m.group(1)) if m else ""


_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
_REPLY = re.compile(r"(?<![\d.-])([245]\d\d)(?=[ -])")


def _find_status(text: str) -> str:
    m = _STATUS.search(text or "")
    return f"{m.group(1)}.{m.group(2)}.{m.group(3)}" if m else ""


_SES_RELAYED = re.compile(r"^\d\.\d{1,3}\.\d{1,3} - .{0,80}? \d{3}[- ]'(.+)'", re.S)


def _diag_clean(value: str) -> str:
    value = re.sub(r"^\s*(smtp|x-[\w-]+|unix|x-postfix)\s*;\s*", "", value or "", flags=re.I)
    value = re.sub(r"\s+", " ", value).strip()
    # Amazon SES: "5.1.0 - Unknown address error 550-'<the remote server's own reply>'":
    # the quoted reply is what the receiving server actually said.
    m = _SES_RELAYED.match(value)
    return m.group(1).strip() if m else value


# --------------------------------------------------------------------------------------------
# Non-standard bounce texts

_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status )?notification|delivery fail|failure notice|"
    r"returned mail|mail delivery (failed|system)|could not be delivered|delivery problem|"
    r"non[- ]?delivery|nondeliverable|^\s*(fw:\s*)?bounce|delivery report|returned to sender|"
    r"mail not delivered|unable to deliver|message delivery|warning: could not|delivery error|"
    r"permanent error|delivery has failed|rejected|error sending|problem sending|"
    r"mail error|notification d'état|unzustellbar|non remis|no se puede entregar|"
    r"message not delivered|delivery failure|failed delivery|message you sent|"
    r"mail system error|email delivery failure|delayed mail|delivery delayed|"
    r"returned message|mail failure|^\s*failed mail|undeliverable|error delivering|"
    r"mail failed|returning to sender|エラー通知|配信エラー|不達|送信できませんでした",
    re.I,
)
_DAEMON_FROM = re.compile(
    r"mailer[-_ ]?daemon|post_?master|mail[-_ ]?delivery|mail delivery subsystem|mail[-_ ]?administrator|"
    r"mail[-_ ]?system|delivery[-_ ]?notification|microsoftexchange|mail services|mdaemon|"
    r"^root@|nobody@", re.I)
#: automated senders that also send ordinary mail: a bounce subject is needed as well
_AUTOMATED_FROM = re.compile(r"no-?reply|notification|do-?not-?reply", re.I)


def _looks_like_bounce(msg: Message, parts: _Parts) -> bool:
    if parts.dsn_parts:
        return True
    if msg.get("X-Failed-Recipients"):
        return True
    ctype = msg.get_content_type()
    if ctype == "multipart/report" and (msg.get_param("report-type") or "").lower() in ("delivery-status", ""):
        return True
    subject = _header_text(msg.get("Subject", ""))
    from_ = _header_text(msg.get("From", ""))
    rp = msg.get("Return-Path")
    # RFC 3464 §2 / RFC 5321 §4.5.5: DSNs are sent with the null reverse-path, "<>".
    daemon = bool(_DAEMON_FROM.search(from_)) or (rp is not None and str(rp).strip() in ("<>", ""))
    body = parts.body_text()[:20000]
    if daemon and (_BOUNCE_SUBJECT.search(subject) or _BOUNCE_BODY.search(body)):
        return True
    if _AUTOMATED_FROM.search(from_) and _BOUNCE_SUBJECT.search(subject):
        return True
    # From a person: a bounce-like subject alone ("Re: rejected proposal") is not enough.
    if _BOUNCE_SUBJECT.search(subject) and _BOUNCE_BODY_STRONG.search(body) and not _auto_reply(msg):
        return True
    if (msg.get("X-MLServer") or msg.get("X-ML-Server")) and _ML_REJECT.search(subject):
        # A mailing-list manager (fml and kin) refusing the post: the list did not take it.
        return True
    return False


_BOUNCE_BODY_STRONG = re.compile(
    r"could not be delivered|couldn't be delivered|delivery to the following recipient|"
    r"permanent(ly)? (error|fatal)|unable to deliver|delivery has failed|failed permanently|"
    r"following address(es)? failed|this is the qmail-send program|transcript of session follows|"
    r"did not reach the following|was not delivered|smtp error|\b[45]\d\d[- ][245]\.\d{1,3}\.\d", re.I)
_ML_REJECT = re.compile(r"not (a )?member|loop alert|reject|denied|error|not allowed", re.I)

_BOUNCE_BODY = re.compile(
    r"could not be delivered|couldn't be delivered|delivery to the following recipient|"
    r"undeliverable|permanent(ly)? (error|fatal)|user unknown|unknown user|"
    r"unable to deliver|delivery has failed|failed permanently|message could not be sent|"
    r"following address(es)? failed|returned to sender|no such user|"
    r"hi\. this is the qmail-send program|transcript of session follows|"
    r"delivery failed|not be delivered|could not deliver|delivery failure|"
    r"was not delivered|nicht zugestellt|non remis|no ha podido ser entregado|"
    r"smtp error|\b5\d\d[- ]\d\.\d|\b55\d\b|did not reach the following|"
    r"failed addresses follow", re.I)


def _header_text(value: Any) -> str:
    """A header as text: RFC 2047 words decoded, raw 8-bit bytes read as UTF-8 (else Latin-1)."""
    try:
        from email.header import decode_header

        out = []
        for chunk, charset in decode_header(value if value is not None else ""):
            if isinstance(chunk, bytes):
                out.append(_decode_bytes(chunk, None if charset in (None, "unknown-8bit") else charset))
            else:
                out.append(chunk)
        return "".join(out)
    except Exception:
        return str(value or "")


#: lines that start the quoted original (the text after them is not the notification)
_ORIGINAL_MARKER = re.compile(
    r"^\s*[-=_*+ ]*\s*("
    r"original message|unsent message|returned message|message headers follow|"
    r"(the )?(header|headers) of the original message|"
    r"below this line is a copy of the message|this is a copy of the message|"
    r"original message (header|headers|follows)|undelivered message|"
    r"original mail|original headers|original email|"
    r"your message reads|message follows|here is (a copy|the original)|"
    r"copy of (your|the) (original )?message|content of the original message|"
    r"headers of your message|ヘッダ|original message header|"
    r"unsent message below|text of (the )?original message|"
    r"rfc822 message follows|---+ *message (header|text)"
    r")", re.I)
_HEADER_LINE = re.compile(
    r"^(Received|Return-Path|Message-I[Dd]|From|To|Subject|Date|DKIM-Signature|MIME-Version|"
    r"Content-Type|X-[A-Za-z0-9-]+|Reply-To|Sender|Cc|References|In-Reply-To|Authentication-Results|"
    r"ARC-[A-Za-z-]+|Delivered-To|Thread-Topic|Thread-Index|Content-Transfer-Encoding):[ \t]?\S", re.I)


def split_notification(text: str) -> tuple[str, str]:
    """(notification text, quoted original headers+body) of a non-MIME bounce body."""
    lines = text.splitlines()
    cut = len(lines)
    for i, line in enumerate(lines):
        if _ORIGINAL_MARKER.match(line):
            cut = i
            break
        # Two header lines in a row (after a blank line, or glued on by the MTA) start the original.
        if _HEADER_LINE.match(line) and i + 1 < len(lines) and \
                (_HEADER_LINE.match(lines[i + 1]) or lines[i + 1][:1] in (" ", "\t")) and \
                (i + 2 < len(lines) and (_HEADER_LINE.match(lines[i + 2]) or lines[i + 2][:1] in (" ", "\t"))):
            cut = i
            break
    notification = "\n".join(lines[:cut])
    rest = lines[cut:]
    # The quoted headers start at the first header line after the marker.
    for j, line in enumerate(rest[:40]):
        if _HEADER_LINE.match(line.lstrip()) and not _ORIGINAL_MARKER.match(line):
            block = [ln[len(ln) - len(ln.lstrip()):] and ln or ln for ln in rest[j:]]
            indent = len(line) - len(line.lstrip())
            if indent:
                block = [ln[indent:] if ln[:indent].isspace() else ln for ln in block]
            return notification, "\n".join(block)
    return notification, ""


def _excluded_addresses(msg: Message, original: Message | None) -> set[str]:
    """Addresses that are never the failed recipient: ours, the original sender's, daemons'."""
    out: set[str] = set()
    for name in ("To", "Delivered-To", "Return-Path", "From", "Reply-To", "Sender"):
        for value in msg.get_all(name, []) or []:
            out.update(_all_addresses(value))
    if original is not None:
        for name in ("From", "Return-Path", "Sender", "Reply-To", "Message-ID", "References",
                     "In-Reply-To", "X-Mailgate-Id"):
            for value in original.get_all(name, []) or []:
                out.update(_all_addresses(value))
    # The bounce's own To is the original sender; X-Original-To on a bounce may be the recipient.
    return out


_SKIP_LINE = re.compile(r"message-?id|in-reply-to|references:|^\s*(to|cc|subject|sent|date):\s|^\s*(<<<|>>>)?\s*mail from|"
                        r"envelope-from|return-path|^\s*from:|^\s*sender:|^\s*reply-to:|"
                        r"\bsent by\b|please contact|further assistance|please send mail to|\bfrom:? *<|your message .{0,40} from|"
                        r"^\s*received:|\bby [\w.-]+ with\b|\bid [\w.-]+@", re.I)


def _text_recipients(msg: Message, parts: _Parts, original: Message | None) -> list[BounceRecipient]:
    notification = ""
    quoted_original = original
    texts = parts.texts or [""]
    chunks = []
    for text in texts:
        note, _ = split_notification(text)
        chunks.append(note)
        if parts.original_parts:
            # With a separate MIME part for the original, later text parts are often the original body.
            break
    notification = "\n".join(chunks)[:_MAX_TEXT]
    excluded = _excluded_addresses(msg, quoted_original)

    found: list[str] = []
    # Exim and others name them outright (not RFC, but widely used).
    for value in msg.get_all("X-Failed-Recipients", []) or []:
        try:
            pairs = email.utils.getaddresses([str(value)])
        except Exception:
            pairs = []
        parsed = [_norm_address(a) for _, a in pairs if "@" in a]
        found += parsed or _all_addresses(value)
    if not found:
        for line in notification.splitlines():
            if _SKIP_LINE.search(line):
                continue
            addrs = _all_addresses(line)
            if len(addrs) >= 2 and re.search(re.escape(addrs[0]) + r"\s+<" + re.escape(addrs[1]) + ">", line, re.I):
                # "a@x <b@y>" is one mailbox (RFC 5322 name-addr): b@y, with a@x as its display name.
                addrs = [x for x in addrs if x != addrs[0]]
            for a in addrs:
                local = a.split("@", 1)[0]
                if a in excluded or local in _DAEMON_LOCALS or _LIST_CONTROL.search(local):
                    continue
                found.append(a)
    if len(set(found)) > 1:
        # MTAs list failed recipients one per line, address first ("<a@b>: 550 ...", qmail,
        # Postfix, Exim, Sendmail alike); an address only met mid-sentence ("please contact
        # <support@...>") is not one of them when such a list exists.
        leading = {a for a in found if re.search(r"^[\s>*\-\"'(\[]*<?" + re.escape(a), notification, re.M | re.I)}
        if leading:
            found = [a for a in found if a in leading]
    if not found:
        inner = _inner_bounce(parts)
        if inner:
            return inner
    if not found and quoted_original is not None:
        # The notification names no address (old Sendmail: a host only): the original's To.
        tos = _all_addresses(quoted_original.get("To", ""))
        found = [a for a in tos if a not in excluded][:1] or tos[:1]
    if not found:
        for value in msg.get_all("X-Original-To", []) or []:
            found += [a for a in _all_addresses(value)]
    out: list[BounceRecipient] = []
    seen: set[str] = set()
    for address in found:
        if address in seen:
            continue
        seen.add(address)
        diag = _diagnostic_near(notification, address)
        status = _find_status(diag) or _find_status(notification)
        reason = reason_for(diag, status, notification, "", address, context_reason=len(set(found)) == 1)
        action = "delayed" if _DELAYED.search(notification) and not _STATUS_5.search(diag) else "failed"
        out.append(BounceRecipient(address, is_permanent(reason, status), status, diag[:1000], reason, action))
    return out


_DELAYED = re.compile(r"has not yet been delivered|delivery (is|has been) delayed|will (continue|keep) trying|"
                      r"will retry|still trying|warning: message .* delayed|not been delivered yet", re.I)
_STATUS_5 = re.compile(r"\b5\d\d\b|\b5\.\d+\.\d+")


def _inner_bounce(parts: _Parts) -> list[BounceRecipient]:
    """A bounce forwarded inside another (a relay wrapped the DSN it got): read the inner one."""
    for part in parts.original_parts[:3]:
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            inner = payload[0]
            inner_parts = _Parts(inner)
            if inner_parts.dsn_parts or _looks_like_bounce(inner, inner_parts):
                report = _classify(inner)
                if report.kind == "bounce" and report.recipients:
                    return report.recipients
    return []


def _diagnostic_near(text: str, address: str, fallback: bool = True) -> str:
    """The error text about `address`: its line and the lines after it, up to a blank line."""
    if not text:
        return ""
    lines = text.splitlines()
    low = address.lower()
    for i, line in enumerate(lines):
        if low in line.lower():
            block = [line.strip()]
            for nxt in lines[i + 1:i + 12]:
                if not nxt.strip():
                    if len(block) > 1:
                        break
                    continue
                m = _ADDR.search(nxt)
                if m and low not in nxt.lower() and (
                        re.match(r"^\s*(\d{3}[ -]+)?[<\"']?$", nxt[:m.start()]) or
                        len(block) > 1 and not re.search(r"\d\d\d|error|reject|unknown|denied", nxt, re.I)):
                    break
                block.append(nxt.strip())
            joined = " ".join(block)
            if len(joined) > len(line.strip()) + 5 or _REASON_ANY.search(joined):
                return _squash(joined)
            break
    if not fallback:
        return ""
    return _squash(text[-2000:] if len(text) > 2000 else text)


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:1000]


def _flufl_recipients(msg: Message, parts: _Parts) -> list[BounceRecipient]:
    """flufl.bounce's detectors as a fallback source of failed addresses."""
    try:
        from flufl.bounce import all_failures
    except Exception:
        return []
    try:
        permanent, temporary = all_failures(msg)
    except Exception:
        return []
    body = parts.body_text()
    out = []
    for raw_addr, temp in [(a, False) for a in permanent] + [(a, True) for a in temporary]:
        address = _norm_address(raw_addr.decode("utf-8", "replace") if isinstance(raw_addr, bytes) else str(raw_addr))
        if not _ADDR.fullmatch(address) or len(address) > 254 or any(r.address == address for r in out):
            # RFC 5321 §4.5.3.1: 64-octet local part, 254-octet address; anything else is noise.
            continue
        diag = _diagnostic_near(body, address)
        status = _find_status(diag)
        reason = reason_for(diag, status, body)
        out.append(BounceRecipient(address, is_permanent(reason, status), status, diag[:1000], reason,
                                   "delayed" if temp else "failed"))
    return out


# --------------------------------------------------------------------------------------------
# Amazon SES notifications (SNS): https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html

_SES_PERMANENT_SUBTYPES = {"noemail": "userunknown", "suppressed": "suppressed",
                           "onaccountsuppressionlist": "suppressed"}
_SES_SOFT_SUBTYPES = {"mailboxfull": "mailboxfull", "messagetoolarge": "mesgtoobig",
                      "contentrejected": "filtered", "attachmentrejected": "filtered"}


def classify_ses_notification(notification: Any) -> BounceReport:
    """An SES bounce / complaint / delivery notification (the JSON SNS carries) as a report.

    Accepts both notification shapes: `notificationType` (identity notifications) and
    `eventType` (configuration-set event publishing). Never raises.
    """
    try:
        return _ses(notification)
    except Exception as exc:
        return BounceReport(kind="normal", method="ses", error=f"unreadable SES notification: {exc}"[:300])


def _ses(n: Any) -> BounceReport:
    if not isinstance(n, dict):
        return BounceReport(kind="normal", method="ses", error="SES notification is not a JSON object")
    ntype = str(n.get("notificationType") or n.get("eventType") or "").lower()
    mail = n.get("mail") if isinstance(n.get("mail"), dict) else {}
    report = BounceReport(method="ses")
    report.original_message_id = str(mail.get("messageId") or "")
    for h in mail.get("headers") or []:
        if isinstance(h, dict) and str(h.get("name", "")).lower() == "x-mailgate-id":
            report.original_mailgate_id = _clean_id(h.get("value", ""))
    if ntype == "bounce":
        b = n.get("bounce") if isinstance(n.get("bounce"), dict) else {}
        btype = str(b.get("bounceType", "")).lower()
        subtype = str(b.get("bounceSubType", "")).replace(" ", "").lower()
        report.kind = "bounce"
        for r in b.get("bouncedRecipients") or []:
            if not isinstance(r, dict):
                continue
            address = _norm_address(str(r.get("emailAddress", "")))
            status = _find_status(str(r.get("status", "")))
            diag = _diag_clean(str(r.get("diagnosticCode", "")))
            if btype == "permanent" and subtype in _SES_PERMANENT_SUBTYPES:
                reason = _SES_PERMANENT_SUBTYPES[subtype]
                permanent = True
            elif subtype in _SES_SOFT_SUBTYPES:
                reason, permanent = _SES_SOFT_SUBTYPES[subtype], False
            else:
                reason = reason_for(diag, status)
                # SES says "Permanent" for General bounces it could not explain: trust it then.
                permanent = is_permanent(reason, status) or (
                    btype == "permanent" and reason in ("undefined", "onhold", ""))
            if btype == "transient":
                permanent = False
            report.recipients.append(BounceRecipient(address, permanent, status, diag[:1000], reason,
                                                     str(r.get("action") or "failed").lower()))
        return report
    if ntype == "complaint":
        c = n.get("complaint") if isinstance(n.get("complaint"), dict) else {}
        report.kind = "complaint"
        report.feedback_type = str(c.get("complaintFeedbackType") or c.get("complaintSubType") or "abuse").lower()
        for r in c.get("complainedRecipients") or []:
            if isinstance(r, dict):
                report.recipients.append(BounceRecipient(_norm_address(str(r.get("emailAddress", ""))), False,
                                                         "", str(c.get("userAgent") or "")[:200], "feedback",
                                                         "complained"))
        return report
    if ntype == "delivery":
        d = n.get("delivery") if isinstance(n.get("delivery"), dict) else {}
        report.kind = "delivery-report"
        resp = str(d.get("smtpResponse", ""))
        for r in d.get("recipients") or []:
            report.recipients.append(BounceRecipient(_norm_address(str(r)), False, _find_status(resp), resp[:1000],
                                                     "delivered", "delivered"))
        return report
    report.error = f"not a bounce, complaint or delivery notification: {ntype or 'no type'}"
    return report


def _ses_json_in_body(msg: Message, parts: _Parts) -> BounceReport | None:
    text = parts.body_text().lstrip()
    if not text.startswith("{") or "notificationType" not in text[:200] and "eventType" not in text[:200]:
        return None
    import json

    # SNS e-mail wraps long lines as "!\n " (RFC 5322's 998-character limit).
    body = text.replace("!\n ", "")
    try:
        data, _ = json.JSONDecoder().raw_decode(body)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("Message"), str):
        try:
            data = json.loads(data["Message"])
        except ValueError:
            return None
    report = classify_ses_notification(data)
    return report if report.kind != "normal" else None


# --------------------------------------------------------------------------------------------
# RFC 3834 auto-replies

_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort|réponse|respuesta)|auto:|out of (the )?office|"
    r"away (from|until)|on vacation|vacation|abwesenheit|absence|réponse automatique|"
    r"respuesta automática|risposta automatica|autoreply|autoresponse|fuera de la oficina|"
    r"i am (out|away)|ooo\b)", re.I)


def _auto_reply(msg: Message) -> str:
    """Why `msg` is an automatic reply (RFC 3834 and the de-facto headers), or ''."""
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto.startswith("auto-replied"):
        return "Auto-Submitted: auto-replied"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponse", "X-Vacation"):
        if msg.get(name) is not None:
            return f"{name} header"
    if str(msg.get("Precedence", "")).strip().lower() == "auto_reply":
        return "Precedence: auto_reply"
    subject = _header_text(msg.get("Subject", ""))
    if _AUTO_SUBJECT.search(subject):
        return f"subject: {subject[:80]}"
    if auto.startswith("auto-generated") and str(msg.get("X-Auto-Response-Suppress", "")):
        return "Auto-Submitted: auto-generated"
    return ""


# --------------------------------------------------------------------------------------------
# Reasons: why a recipient failed, and whether the address is dead


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.I)


#: phrasings of big providers that say outright that the mailbox does not exist
_STRONG_USERUNKNOWN = _rx(r"inactive email address", r"doesn't have an? .{0,40} account", r"no valid recipients",
                          r"invalid final delivery userid", r"please check if address is correct",
                          r"recipient address rejected(\.|: access denied)", r"ディレクトリ", r"見つかりません",
                          r"and other recipients in the same domain")


#: checked in order; the first that matches names the reason (Sisimai's vocabulary)
_REASONS: list[tuple[str, re.Pattern[str]]] = [
    # Vendor phrasings that would otherwise match a broader pattern of another reason.
    ("rejected", _rx(r"domain of sender", r"sender address", r"after mail from", r"not have permission to post")),
    ("speeding", _rx(r"too many recipients")),
    # Japanese carriers (au/ezweb) answer "550 : User unknown" (no address) to DATA when the
    # recipient's own reception filter refuses the sender: the mailbox exists.
    ("filtered", _rx(r"\b550\s?:\s?(:\s?)?user unknown")),
    ("blocked", _rx(r"my name was rejected", r"remote protocol error")),
    ("networkerror", _rx(r"host not found, try again", r"malformed or unexpected name server reply")),
    ("mailererror", _rx(r"procmail", r"couldn't create \"")),
    ("notaccept", _rx(r"does not accept mail", r"not accepting network messages", r"null mx", r"doesn't receive email", r"no smtp service",
                      r"couldn't find a mail exchanger")),
    ("hostunknown", _rx(r"dns lookup failure", r"host \S+ not found", r"\d{3} [\w.-]+\.[a-z]{2,} does not exist")),
    ("userunknown", _STRONG_USERUNKNOWN),
    ("mailboxfull", _rx(r"mailbox (is )?full", r"over ?quota", r"quota exceeded", r"exceeded .*quota",
                        r"mailbox.*exceed", r"insufficient (disk )?space", r"mail ?box (size )?limit",
                        r"mailfolder is full", r"not enough (storage|space)", r"user has exhausted",
                        r"box is full", r"full mailbox", r"too much mail", r"mailbox has exceeded",
                        r"would exceed", r"disk quota", r"no space left", r"storage (limit|quota)",
                        r"out of storage", r"quota (full|limit)", r"exceeds? (the )?storage")),
    ("mesgtoobig", _rx(r"message (is )?too (big|large)", r"exceeds (the )?(maximum|max) (message )?size",
                       r"message size exceeds", r"size limit", r"message length exceeds",
                       r"too large")),
    ("suspend", _rx(r"\bdisabled", r"suspended", r"\binactive", r"deactivated",
                    r"account (has been )?(locked|closed|blocked)",
                    r"mailbox (is )?(locked|closed|inactive)", r"expired account", r"not active")),
    ("hasmoved", _rx(r"has been replaced by", r"address has moved", r"moved permanently",
                     r"is no longer (at|with)", r"new address")),
    ("norelaying", _rx(r"relay(ing)? (denied|not permitted|access denied|prohibited)", r"not permitted to relay",
                       r"relay not permitted", r"unable to relay", r"not allowed to relay", r"relaying")),
    ("authfailure", _rx(r"dmarc", r"\bspf\b", r"dkim", r"authentication checks", r"not authenticated",
                        r"unauthenticated")),
    ("requireptr", _rx(r"reverse (dns|lookup)", r"\bptr\b", r"rdns", r"no reverse", r"reverse-?dns")),
    ("spamdetected", _rx(r"spam", r"junk", r"unsolicited")),
    ("virusdetected", _rx(r"virus", r"malware", r"infected")),
    ("hostunknown", _rx(r"host unknown", r"unknown host", r"host not found", r"no such domain",
                        r"domain (not found|does not exist)", r"name or service not known",
                        r"unrouteable (mail )?domain", r"\bno mx", r"domain name not found",
                        r"host or domain name not found", r"unknown domain", r"domain .{0,40}does not exist",
                        r"nxdomain", r"no such host", r"all relevant mx records", r"illegal host/domain",
                        r"domain not resolved", r"invalid domain", r"domain is not reachable",
                        r"host name lookup failure", r"no smtp service", r"doesn't receive email", r"unrouteable address")),
    ("userunknown", _rx(r"user ?unknown", r"unknown (user|recipient|mailbox|address|local[- ]part)",
                        r"no such (user|mailbox|recipient|account|address|person)",
                        r"user (not found|does not exist|doesn't exist|not exist)",
                        r"(recipient|mailbox|user|account|address)( \S+)? (not found|does not exist|doesn't exist|unknown)",
                        r"invalid (recipient|mailbox|address|user)", r"not a valid (mailbox|user|recipient)",
                        r"recipnotfound", r"recipient unknown", r"bad destination mailbox",
                        r"mailbox (unavailable|not available|is unavailable)", r"no mailbox",
                        r"account (is )?(does not exist|unavailable|not found)", r"addressee unknown",
                        r"unknown or illegal alias", r"does not exist", r"doesn't exist", r"not exist",
                        r"no longer (exists|available)", r"not our customer", r"user invalid",
                        r"not listed in", r"unknown or invalid", r"address (is )?invalid",
                        r"invalid address", r"couldn't find .{0,40}(address|account)", r"is not a known user",
                        r"address couldn't be found", r"account that you tried to reach does not exist",
                        r"mailbox not found", r"no such local user", r"unknown address", r"recipient invalid",
                        r"user_unknown", r"unknownuser", r"recipient name is not recognized")),
    ("blocked", _rx(r"blocked", r"blacklist", r"block ?list", r"denylist", r"listed (in|on|at)",
                    r"poor reputation", r"\brbl\b", r"spamhaus", r"access denied")),
    ("rejected", _rx(r"sender (address )?(rejected|denied|unknown|verify)", r"domain of sender",
                     r"not accept", r"refused")),
    ("filtered", _rx(r"filter", r"rejected by", r"content", r"policy", r"not authorized",
                     r"permission denied", r"forbidden")),
    ("expired", _rx(r"retry time", r"timeout|timed out", r"could not be delivered for \d+", r"too long",
                    r"delivery time expired", r"message expired", r"deferred", r"for \d+ (days|hours)",
                    r"expired", r"giving up")),
    ("systemerror", _rx(r"system error", r"internal error", r"server error", r"mail loop", r"loop detected",
                        r"too many hops", r"routing loop", r"temporary (local )?problem", r"local error")),
    ("networkerror", _rx(r"connection (refused|reset|timed)", r"network", r"could not connect",
                         r"unreachable")),
    ("userunknown", _rx(r"\bnot found\b")),
]
_REASON_ANY = re.compile("|".join(p.pattern for _, p in _REASONS), re.I)

_STATUS_REASON = {
    "5.1.1": "userunknown", "5.1.0": "userunknown", "5.1.3": "userunknown", "5.1.10": "userunknown",
    "5.1.2": "hostunknown", "5.1.6": "hasmoved", "5.2.2": "mailboxfull", "4.2.2": "mailboxfull",
    "5.2.1": "suspend", "5.3.4": "mesgtoobig", "5.2.3": "mesgtoobig", "5.4.4": "hostunknown",
    "5.1.8": "rejected", "5.1.7": "rejected", "5.7.1": "blocked", "5.7.26": "authfailure",
    "4.4.7": "expired", "5.4.7": "expired", "4.4.1": "networkerror", "5.4.1": "userunknown",
}


_USERUNKNOWN_STATUS = frozenset({"5.1.1", "5.1.0", "5.1.3", "5.1.10", "4.1.1"})
_RCPT_STAGE = re.compile(r"rcpt|does not like recipient", re.I)
_DATA_STAGE = re.compile(r"end of data|after end of|did not like our final data", re.I)


def reason_for(diagnostic: str, status: str = "", context: str = "", stage: str = "", address: str = "",
               *, context_reason: bool = True) -> str:
    """Sisimai-style reason of a failure from its diagnostic text and DSN status.

    `context` is the whole notification (read for the SMTP stage; read for the reason itself only
    when `context_reason`, i.e. when it speaks of this recipient alone); `stage` is the text next
    to this recipient's address.
    """
    text = diagnostic or ""
    reason = _first_reason(text)
    if not reason and status in _STATUS_REASON:
        reason = _STATUS_REASON[status]
    if not reason and context_reason and context and context is not text:
        reason = _first_reason(context[:5000])
    if reason in HARD_REASONS and status[:1] == "4" and status != "4.1.1":
        # A temporary status says the address may come back (DNS trouble, greylisting).
        reason = "networkerror" if reason == "hostunknown" else "onhold"
    if reason == "userunknown" and status not in _USERUNKNOWN_STATUS and not _STRONG_USERUNKNOWN.search(text) and (
            status == "5.2.0" or _DATA_STAGE.search(text + " " + stage) or _transcript_command(context, address) == "DATA"):
        # "User unknown" said after DATA (or under RFC 3463's 5.2.0, "other mailbox status"):
        # the server accepted the address at RCPT and refused the message, a content filter's
        # answer in disguise; the address may well be alive (Sisimai's rule), so not permanent.
        reason = "filtered"
    if reason == "userunknown" and status[:3] in ("5.2", "5.7") and not _STRONG_USERUNKNOWN.search(text) and \
            not _RCPT_STAGE.search(text + " " + stage):
        # A mailbox-status (X.2) or policy (X.7) code with a "user unknown" text and no sign that
        # it answered RCPT TO: the status is the more specific statement (RFC 3463 §3).
        reason = "filtered"
    if status == "5.1.6":
        reason = "hasmoved"  # RFC 3463: destination mailbox has moved, no forwarding address
    if reason in ("", "undefined") and status in ("5.1.1", "5.1.10", "5.1.2", "5.1.6"):
        reason = _STATUS_REASON[status]
    if not reason:
        if status.startswith("4"):
            return "expired" if status.startswith("4.4") else "onhold"
        return "undefined" if not status or status == "5.0.0" else "onhold"
    return reason


_TRANSCRIPT_CMD = re.compile(r"^\s*>>>\s*([A-Za-z]{4})\b", re.M)
_TRANSCRIPT_REPLY = re.compile(r"^\s*<<<\s*[45]\d\d\b", re.M)


def _transcript_command(context: str, address: str) -> str:
    """The SMTP command (RFC 5321) after which a Sendmail-style transcript shows the error about
    `address` ('' when the transcript does not say)."""
    if not context or not address or ">>>" not in context:
        return ""
    command = ""
    low = address.lower()
    for line in context.splitlines():
        m = _TRANSCRIPT_CMD.match(line)
        if m:
            command = m.group(1).upper()
        elif _TRANSCRIPT_REPLY.match(line) and low in line.lower():
            return command
    return ""


def _first_reason(text: str) -> str:
    if not text:
        return ""
    for reason, rx in _REASONS:
        if rx.search(text):
            return reason
    return ""


def is_permanent(reason: str, status: str = "") -> bool:
    """The address is dead: no such user or domain, or it moved (a single bounce suppresses)."""
    if reason in HARD_REASONS:
        return True
    if reason == "notaccept":
        return not status.startswith("4")
    return False
