"""Why a recipient failed, and whether the address is dead: RFC 3463 status codes, the texts of
mail systems, and Sisimai's reason vocabulary (userunknown, hostunknown, mailboxfull, ...).

"permanent" means the *address* is dead (no such user, no such domain, moved): those are the
failures that justify suppressing an address after a single bounce. A 5xx that rejects the
message for its content, reputation, size or a full mailbox is recorded with its status but is
not permanent for the address (Sisimai's hard/soft split, which the shared corpus records).
"""

from __future__ import annotations

import re
from functools import lru_cache

from .addresses import ADDRESS

#: reasons after which the address itself is gone (Sisimai's hard bounces)
HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved"})


_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")


def find_status(text: str) -> str:
    """The first RFC 3463 enhanced status code (class.subject.detail) in a text, else ""."""
    m = _STATUS.search(text or "")
    return f"{m.group(1)}.{m.group(2)}.{m.group(3)}" if m else ""


SES_RELAYED = re.compile(r"^\d\.\d{1,3}\.\d{1,3} - .{0,80}? \d{3}[- ]'(.+)'", re.S)


#: characters of a diagnostic read (an SMTP reply is at most a few lines, RFC 5321 §4.5.3.1.5)
MAX_DIAGNOSTIC = 4000
#: characters of a whole notice read for a reason when the recipient's own text gives none (the
#: explanation comes first; the rest is the original and its headers)
MAX_CONTEXT = 3000


def diag_clean(value: str) -> str:
    """A Diagnostic-Code value (RFC 3464 §2.3.6) without its type and with its white space squashed."""
    value = re.sub(r"^\s*(smtp|x-[\w-]+|unix|x-postfix)\s*;\s*", "", (value or "")[:MAX_DIAGNOSTIC], flags=re.I)
    value = re.sub(r"\s+", " ", value).strip()
    # Amazon SES: "5.1.0 - Unknown address error 550-'<the remote server's own reply>'":
    # the quoted reply is what the receiving server actually said.
    m = SES_RELAYED.match(value)
    return m.group(1).strip() if m else value


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:1000]


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.I)


#: phrasings of big providers that say outright that the mailbox does not exist
_STRONG_USERUNKNOWN = _rx(r"inactive email address", r"doesn't have an? .{0,40} account", r"no valid recipients",
                          r"non-?existent (user|mailbox|recipient|address|account)", r"no mail ?box",
                          r"\brcpt <[^<>\s]{1,254}> does not exist", r"user not known",
                          r"invalid final delivery userid", r"please check if address is correct",
                          r"recipient address rejected(\.|: access denied)", r"ディレクトリ", r"見つかりません",
                          r"and other recipients in the same domain")


#: checked in order; the first that matches names the reason (Sisimai's vocabulary)
_REASONS: list[tuple[str, re.Pattern[str]]] = [
    # Vendor phrasings that would otherwise match a broader pattern of another reason.
    ("rejected", _rx(r"domain of sender", r"sender address", r"after mail from", r"not have permission to post",
                     r"not (be )?(allowed|authorized|permitted) to (post|send)", r"pas autoris[ée]")),
    ("speeding", _rx(r"too many recipients", r"receiving mail at a rate", r"rate that prevents")),
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
    ("mailboxfull", _rx(r"mailbox (is )?full", r"over ?quota", r"quota exceeded", r"exceeded .{0,80}quota",
                        r"mailbox.{0,80}exceed", r"insufficient (disk )?space", r"mail ?box (size )?limit",
                        r"mailfolder is full", r"not enough (storage|space)", r"user has exhausted",
                        r"box is full", r"full mailbox", r"too much mail", r"mailbox has exceeded",
                        r"would exceed", r"disk quota", r"no space left", r"storage (limit|quota)",
                        r"out of storage", r"quota (full|limit)", r"exceeds? (the )?storage")),
    ("mesgtoobig", _rx(r"message (is )?too (big|large)", r"exceeds (the )?(maximum|max) (message )?size",
                       r"message size exceeds", r"size limit", r"message length exceeds",
                       r"too large")),
    ("suspend", _rx(r"\bdisabled", r"suspended", r"\bsuspend\b", r"\binactive", r"deactivated", r"discontinued",
                    r"account (is |has been )?(closed|terminated|locked)", r"no longer active",
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
                        r"user_unknown", r"unknownuser", r"recipient name is not recognized",
                        r"no longer valid", r"wrong or no longer",
                        r"(does not have|no) (a )?final (e-?mail )?delivery point",
                        r"no matches? (to|for) (the )?(nameserver|directory)",
                        r"did not (exactly )?match an? .{0,20}address",
                        # fr, de, es, pt, it, nl, pl, ru, ja, zh
                        r"n'existe pas", r"(utilisateur|destinataire|adresse) (inconnu|invalide)", r"existiert nicht",
                        r"(benutzer|empfänger|adresse) unbekannt", r"unbekannte?r? (benutzer|empfänger)",
                        r"no existe", r"(usuario|destinatario) desconocido", r"não existe",
                        r"(usuário|utilizador|destinatário) desconhecido", r"non esiste",
                        r"(utente|destinatario) sconosciuto", r"bestaat niet", r"onbekende (gebruiker|ontvanger)",
                        r"nie istnieje", r"nieznany (użytkownik|adresat)", r"не существует",
                        r"(неизвестный|несуществующий) (пользователь|адрес|получатель)",
                        r"нет такого (пользователя|адреса)",
                        r"存在しません", r"宛先不明", r"用户不存在", r"收件人不存在", r"无此用户")),
    ("blocked", _rx(r"blocked", r"blacklist", r"block ?list", r"denylist", r"listed (in|on|at)",
                    r"poor reputation", r"\brbl\b", r"spamhaus", r"access denied")),
    ("rejected", _rx(r"sender (address )?(rejected|denied|unknown|verify)", r"domain of sender",
                     r"not accept", r"refused")),
    ("filtered", _rx(r"filter", r"rejected by", r"content", r"policy", r"not authorized",
                     r"permission denied", r"forbidden")),
    ("expired", _rx(r"retry time", r"timeout|timed out", r"could not be delivered for \d+", r"too long",
                    r"failed \d+ attempts", r"after \d+ (attempts|retries|tries)", r"not delivered within \d+",
                    r"allowed queue (period|time)", r"maximum (number of )?(delivery )?(attempts|retries)",
                    r"too many (retries|delivery attempts)",
                    r"delivery time expired", r"message expired", r"deferred", r"for \d+ (days|hours)",
                    r"expired", r"giving up")),
    ("systemerror", _rx(r"system error", r"internal error", r"server error", r"mail loop", r"loop detected",
                        r"too many hops", r"routing loop", r"temporary (local )?problem", r"local error")),
    ("networkerror", _rx(r"connection (refused|reset|timed)", r"network", r"could not connect", r"not responding",
                         r"not reachable",
                         r"unreachable")),
    ("userunknown", _rx(r"\bnot found\b")),
]

_STATUS_REASON = {
    "5.1.1": "userunknown", "5.1.0": "userunknown", "5.1.3": "userunknown", "5.1.10": "userunknown",
    "5.1.2": "hostunknown", "5.1.6": "hasmoved", "5.2.2": "mailboxfull", "4.2.2": "mailboxfull",
    "5.2.1": "suspend", "5.3.4": "mesgtoobig", "5.2.3": "mesgtoobig", "5.4.4": "hostunknown",
    "5.1.8": "rejected", "5.1.7": "rejected", "5.7.1": "blocked", "5.7.26": "authfailure",
    "4.4.7": "expired", "5.4.7": "expired", "4.4.1": "networkerror", "5.4.1": "userunknown",
}


_USERUNKNOWN_STATUS = frozenset({"5.1.1", "5.1.0", "5.1.3", "5.1.10", "4.1.1"})
_DATA_STAGE = re.compile(r"end of data|after end of|did not like our final data", re.I)


def reason_for(diagnostic: str, status: str = "", context: str = "", stage: str = "", address: str = "",
               *, context_reason: bool = True, command: str | None = None) -> str:
    """Sisimai-style reason of a failure from its diagnostic text and DSN status.

    `context` is the whole notification (read for the SMTP stage; read for the reason itself only
    when `context_reason`, i.e. when it speaks of this recipient alone); `stage` is the text next
    to this recipient's address; `command` the SMTP command a transcript shows the error answered
    (looked up in `context` when not given).
    """
    text = diagnostic or ""
    reason = _first_reason(text)
    if not reason and status in _STATUS_REASON:
        reason = _STATUS_REASON[status]
    if not reason and context_reason and context and context is not text:
        reason = _first_reason(context[:MAX_CONTEXT])
    if reason in HARD_REASONS and status[:1] == "4" and status != "4.1.1":
        # A temporary status says the address may come back (DNS trouble, greylisting).
        reason = "networkerror" if reason == "hostunknown" else "onhold"
    if reason == "userunknown" and status not in _USERUNKNOWN_STATUS and not _STRONG_USERUNKNOWN.search(text) and (
            _DATA_STAGE.search(text + " " + stage) or
            (command if command is not None else _transcript_command(context, address)) == "DATA"):
        # "User unknown" said after DATA: the server accepted the address at RCPT and refused the
        # message, a content filter's answer in disguise; the address may well be alive
        # (Sisimai's rule), so not permanent. Whatever the enhanced code, a "user unknown" text
        # said at RCPT (or where the stage is not known) is a dead address.
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


#: RFC 3463 codes for reasons a notice gave in words only: a message that expired in the
#: queue, after temporary failures, is X.4.7 (a persistent transient error); a network or DNS
#: failure that was retried, X.4.0
_IMPLIED_STATUS = {"expired": "4.4.7", "networkerror": "4.4.0"}


def implied_status(reason: str) -> str:
    """The RFC 3463 code a reason implies when the notice gave none ("" when it implies none)."""
    return _IMPLIED_STATUS.get(reason, "")


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
    """The first reason of `_REASONS` a text gives. The addresses in it do not change the answer
    and are replaced before the (cached) lookup, so that a notice listing many recipients with
    the same error reads that error once."""
    if not text:
        return ""
    return _reason_of(ADDRESS.sub("x@example.invalid", text) if "@" in text else text)


@lru_cache(maxsize=256)
def _reason_of(text: str) -> str:
    for reason, rx in _REASONS:
        if rx.search(text):
            return reason
    return ""


def gives_reason(text: str) -> bool:
    """Whether a text names any reason at all."""
    return bool(_first_reason(text))


#: a suspended account that says it will come back
_TEMPORARY = re.compile(r"temporar|try again|frozen|\block(ed)?\b|over ?quota", re.I)
#: a suspension the text says is for good: the account was closed or deactivated, not paused
#: ("disabled", "inactive", "locked" accounts are switched back on by their owner or provider:
#: they count as soft bounces, as Sisimai has them)
_FOR_GOOD = re.compile(r"deactivated|suspended|\[suspend\]|closed|terminated|no longer active|deleted|removed",
                       re.I)


def is_permanent(reason: str, status: str = "", text: str = "") -> bool:
    """The address is dead: no such user or domain, it moved, or the account is disabled or
    suspended for good (a single bounce suppresses). A 4xx status, or a suspension the text
    calls temporary (`text`: the diagnostic), is not."""
    if reason in HARD_REASONS:
        return True
    if reason == "suspend":
        text = text[:MAX_DIAGNOSTIC]
        return not status.startswith("4") and bool(_FOR_GOOD.search(text)) and not _TEMPORARY.search(text)
    if reason == "notaccept":
        return not status.startswith("4")
    return False
