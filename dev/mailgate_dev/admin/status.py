"""`mailgate status`: the state of the gateway now, gathered from its stores and AWS, on one screen.

`gather` reads (queues and dead-letter queues, the ledger's last 24 hours, each mailbox's health,
the suppression list, the last DNS check of each domain, the alarms in ALARM) and lists what needs
a person under "attention"; `render` draws it for a terminal.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from mailgate import suppression
from mailgate.services import dnswatch

from .ports import AdminPorts

DAY = 24 * 3600
#: ledger records read per direction for the last 24 hours (the count says "at least" past it)
LEDGER_CAP = 5000
#: mailboxes drawn in the table (problems first); --json has them all
MAILBOX_ROWS = 40


def gather(c, admin: AdminPorts, *, now: float | None = None, stack: str = "local") -> dict[str, Any]:
    now = time.time() if now is None else now
    state = {"stack": stack, "at": now, "queues": queues(admin), "messages_24h": messages(c, now),
             "mailboxes": mailboxes(c, now), "suppressions": suppressions(c), "dns": dns(c),
             "alarms": alarms(admin)}
    state["attention"] = attention(state)
    return state


def queues(admin: AdminPorts) -> list[dict[str, Any]]:
    """Every queue the stack outputs (`...QueueUrl`), work queues first, with its depth."""
    rows = []
    for key, url in sorted(admin.outputs.items()):
        if not key.endswith("QueueUrl") or not url:
            continue
        d = admin.queues.depth(url)
        dead = any(w in key for w in ("DeadLetter", "AsyncFailure", "Dlq"))
        rows.append({"name": key[: -len("Url")], "url": url, "visible": d.visible, "in_flight": d.in_flight,
                     "delayed": d.delayed, "dead_letter": dead, "error": d.error})
    return sorted(rows, key=lambda r: (r["dead_letter"], r["name"]))


def messages(c, now: float) -> dict[str, Any]:
    """Outcomes of the last 24 hours per direction, from the ledger (newest first, capped)."""
    out: dict[str, Any] = {"complete": True}
    for direction in ("in", "out"):
        rows = c.messages.list(limit=LEDGER_CAP, direction=direction)
        recent = [r for r in rows if r.received_at >= now - DAY]
        out[direction] = dict(Counter(r.outcome for r in recent).most_common())
        if len(rows) == LEDGER_CAP and len(recent) == LEDGER_CAP:
            out["complete"] = False
    return out


def mailboxes(c, now: float) -> list[dict[str, Any]]:
    health = {key.partition("#")[2]: h for key, h in c.kv.scan_prefix("health#")}
    rows = [_mailbox(s, health.get(s.name) or {}, now) for s in c.config.list_incoming()]
    order = {"disabled": 0, "failing": 1, "never fetched": 2, "ok": 3}
    return sorted(rows, key=lambda r: (order[r["health"]], r["name"]))


def _mailbox(server, h: dict[str, Any], now: float) -> dict[str, Any]:
    last_success = float(h.get("last_success") or 0) or None
    failures = int(h.get("consecutive_failures") or 0)
    if not server.enabled:
        state = "disabled"
    elif failures:
        state = "failing"
    elif not h.get("last_run"):
        state = "never fetched"
    else:
        state = "ok"
    return {"name": server.name, "protocol": server.protocol, "host": server.host, "enabled": server.enabled,
            "interval_minutes": server.interval_minutes, "health": state,
            "last_fetch": float(h.get("last_run") or 0) or None, "last_success": last_success,
            "lag_seconds": (now - last_success) if last_success else None, "failures": failures,
            "failing_since": h.get("failing_since"), "disabled_at": h.get("disabled_at"),
            "last_error": h.get("last_error", "") if failures or not server.enabled else ""}


def suppressions(c) -> dict[str, Any]:
    entries = suppression.list_suppressed(c.kv)
    newest = max(entries, key=lambda e: float(e.get("since") or 0), default=None)
    return {"count": len(entries), "newest": newest}


def dns(c) -> list[dict[str, Any]]:
    """The last daily DNS check of every alias domain (dnswatch keeps it)."""
    checked = {v.get("domain"): v for _, v in c.kv.scan_prefix(dnswatch.KEY_PREFIX)}
    rows = []
    for d in c.config.list_domains():
        last = checked.get(d.name) or {}
        bad = sorted(k for k, v in (last.get("records") or {}).items() if v != "ok")
        rows.append({"domain": d.name, "status": last.get("status", "never checked"),
                     "checked_at": last.get("checked_at"), "not_ok": bad})
    return rows


def alarms(admin: AdminPorts) -> dict[str, Any]:
    if admin.local or admin.alarms is None:
        return {"local": True, "in_alarm": []}
    topic = admin.outputs.get("AlarmTopicArn", "")
    found = admin.alarms.in_alarm(topic) if topic else []
    return {"local": False, "topic": topic, "in_alarm": [vars(a) for a in found]}


def attention(state: dict[str, Any]) -> list[str]:
    """One line per thing that needs a person, most urgent first."""
    lines = [f"alarm {a['name']}: {a['reason']}" for a in state["alarms"]["in_alarm"]]
    for q in state["queues"]:
        if q["dead_letter"] and q["visible"]:
            lines.append(f"{q['name']} holds {q['visible']} message(s) that failed every retry")
        if q["error"]:
            lines.append(f"{q['name']}: {q['error']}")
    failed = state["messages_24h"]["in"].get("failed", 0)
    if failed:
        lines.append(f"{failed} message(s) recorded failed in 24 hours: `mailgate messages list --outcome failed`")
    for m in state["mailboxes"]:
        lines += _mailbox_attention(m)
    for d in state["dns"]:
        if d["status"] in ("warn", "error"):
            lines.append(f"DNS of {d['domain']}: {d['status']} ({', '.join(d['not_ok'])}): `mailgate dns check {d['domain']}`")
    return lines


def _mailbox_attention(m: dict[str, Any]) -> list[str]:
    name = m["name"]
    if m["health"] == "disabled" and m["disabled_at"]:
        return [f"mailbox {name} disabled after failing since {_when(m['failing_since'])}: {m['last_error']}; fix it, "
                f"`mailgate server test {name}`, then `mailgate server enable {name}`"]
    if m["health"] == "disabled":
        return [f"mailbox {name} disabled: not fetched until `mailgate server enable {name}`"]
    if m["health"] == "failing":
        return [f"mailbox {name} failing since {_when(m['failing_since'])} ({m['failures']} run(s)): {m['last_error']}"]
    return []


def _when(t) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(float(t))) if t else "?"


# --------------------------------------------------------------------------- drawing


def _ago(t: float | None, now: float) -> str:
    if not t:
        return "-"
    s = max(0, now - float(t))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.0f}{unit} ago"
    return f"{s:.0f}s ago"


def _duration(s: float | None) -> str:
    if s is None:
        return "-"
    return _ago(0.0, float(s)).replace(" ago", "")


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]


def render(state: dict[str, Any]) -> str:
    now = state["at"]
    out = [f"mailgate status - {state['stack']} - {_when(now)}", ""]
    out += ["Needs attention"] + [f"  ! {line}" for line in state["attention"]] if state["attention"] else ["All clear"]
    out += ["", "Queues"] + _table([["QUEUE", "VISIBLE", "IN FLIGHT", "DELAYED", ""]] + [
        [q["name"], str(q["visible"]), str(q["in_flight"]), str(q["delayed"]),
         ("! dead letters" if q["dead_letter"] and q["visible"] else "dead-letter queue" if q["dead_letter"] else "")
         + (f" {q['error']}" if q["error"] else "")] for q in state["queues"]])
    out += ["", "Messages, last 24 hours" + ("" if state["messages_24h"]["complete"] else f" (at least: newest {LEDGER_CAP} read)")]
    for direction, label in (("in", "in "), ("out", "out")):
        counts = state["messages_24h"][direction]
        out.append(f"  {label}  " + (", ".join(f"{k} {v}" for k, v in counts.items()) or "none"))
    out += ["", "Mailboxes"] + _mailbox_lines(state["mailboxes"], now)
    s = state["suppressions"]
    newest = s["newest"]
    out += ["", f"Suppressions: {s['count']}" + (
        f" (newest: {newest.get('address')} for {newest.get('domain')}, {_ago(newest.get('since'), now)}, "
        f"{newest.get('reason', '')})" if newest else "")]
    out += ["", "DNS (last daily check)"] + (_table([[d["domain"], d["status"], _ago(d["checked_at"], now),
                                                     ", ".join(d["not_ok"])] for d in state["dns"]])
                                            if state["dns"] else ["  no alias domain"])
    out += ["", "Alarms: " + _alarm_line(state["alarms"], now)]
    return "\n".join(out)


def _mailbox_lines(rows: list[dict[str, Any]], now: float) -> list[str]:
    if not rows:
        return ["  no incoming server"]
    shown = rows[:MAILBOX_ROWS]
    lines = _table([["MAILBOX", "PROTOCOL", "HEALTH", "LAST FETCH", "LAG", "LAST ERROR"]] + [
        [m["name"], m["protocol"], m["health"], _ago(m["last_fetch"], now), _duration(m["lag_seconds"]),
         m["last_error"][:70]] for m in shown])
    if len(rows) > len(shown):
        lines.append(f"  ... and {len(rows) - len(shown)} more (`mailgate status --json` lists them all)")
    return lines


def _alarm_line(a: dict[str, Any], now: float) -> str:
    if a["local"]:
        return "no alarms (local stack)"
    if not a["in_alarm"]:
        return "none in ALARM"
    return "; ".join(f"{x['name']} since {_ago(x['since'], now)}" for x in a["in_alarm"])
