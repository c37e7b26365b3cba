"""Mail understanding on mail this project never saw: bounces, auto-replies, reply text.

Run from the repository root (`make bench` installs the baselines, the `bench` extra):
    .venv/bin/python bench/understanding.py [--misses SET]

Reads the sets listed in tests/data/understanding/SETS.json (each marked develop or holdout) and
prints, per set and per task, our scores beside baselines run in the same process on the same
messages:
- bounces: is-bounce accuracy; failed-recipient set exactly right; RFC 3463 status class right;
  dead-or-alive right. Baselines: flufl.bounce, bounced (RFC 3464 fields only).
- auto-replies: recall on auto-replies; false positives on list mail and on person mail.
  Baselines: RFC 3834 Auto-Submitted alone; RFC 3834 plus the common vendor headers.
- reply text: exactly right (tests/data/understanding/REPLY-RULES.md). Baselines: talon,
  email_reply_parser, mail-parser-reply, and the input unchanged.
Then the develop and holdout totals. `--misses SET` lists our failures on one set; it refuses
holdout sets (those are only measured).
"""

from __future__ import annotations

import argparse
import email
import logging
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "layers" / "core"))

from tests.understanding_sets import bodies, html_text, load_sets, reply_right  # noqa: E402

logging.disable(logging.CRITICAL)  # flufl.bounce logs every detector error it survives
warnings.simplefilter("ignore")    # talon's regexes raise SyntaxWarnings on Python 3.12

Bounce = tuple[bool, set[str], str | None, bool | None]  # is_bounce, recipients, class, dead


# --------------------------------------------------------------------------------------------
# Bounces


def ours_bounce(raw: bytes) -> Bounce:
    from mailgate.bounces import classify
    r = classify(raw)
    failed = r.failed if r.kind == "bounce" else []
    classes = {(x.status[:1] if x.status[:1] in ("4", "5") else ("4" if x.action == "delayed" else "5"))
               for x in failed}
    return (r.kind == "bounce", {x.address.lower() for x in failed},
            classes.pop() if len(classes) == 1 else None,
            all(x.permanent for x in failed) if failed else None)


def flufl_bounce(raw: bytes) -> Bounce:
    from flufl.bounce import all_failures
    try:
        temporary, permanent = all_failures(email.message_from_bytes(raw))
    except Exception:  # noqa: BLE001 - a baseline that fails on a message gets it wrong
        return (False, set(), None, None)
    addrs = {a.decode("utf-8", "replace").lower() for a in set(temporary) | set(permanent)}
    klass = "5" if permanent else ("4" if temporary else None)
    # flufl.bounce says permanent or temporary only; Mailman treats permanent as "stop mailing"
    return (bool(addrs), addrs, klass, bool(permanent) if addrs else None)


def bounced_bounce(raw: bytes) -> Bounce:
    from bounced import get_bounces
    try:
        found = get_bounces(email.message_from_bytes(raw)) or set()
    except Exception:  # noqa: BLE001
        return (False, set(), None, None)
    addrs = {b.recipient[1].lower() for b in found if b.recipient and b.recipient[1]}
    classes = {(b.status or "")[:1] for b in found} - {""}
    # RFC 3463 subject 1 (addressing: bad mailbox, bad system, moved) is the only "dead" it can tell
    dead = all((b.status or "").startswith("51") for b in found) if found else None
    return (bool(found), addrs, classes.pop() if len(classes) == 1 else None, dead)


BOUNCE_RUNNERS: dict[str, Callable[[bytes], Bounce]] = {
    "ours": ours_bounce, "flufl.bounce": flufl_bounce, "bounced": bounced_bounce}


def score_bounces(s, run: Callable[[bytes], Bounce]) -> tuple[dict[str, tuple[int, int]], list[str]]:
    n = defaultdict(lambda: [0, 0])
    misses = []
    for c in s.cases:
        is_b, rcpts, klass, dead = run(s.raw(c))
        ok = is_b == c["is_bounce"]
        n["is-bounce"][0] += ok
        n["is-bounce"][1] += 1
        why = [] if ok else [f"is_bounce {is_b}"]
        if c["is_bounce"]:
            r = rcpts == set(c["recipients"])
            n["recipients"][0] += r
            n["recipients"][1] += 1
            if not r:
                why.append(f"recipients {sorted(rcpts)} != {c['recipients']}")
            if c["status_class"] is not None:
                k = klass == c["status_class"]
                n["class"][0] += k
                n["class"][1] += 1
                if not k:
                    why.append(f"class {klass} != {c['status_class']}")
            if c["dead"] is not None:
                d = dead == c["dead"]
                n["dead"][0] += d
                n["dead"][1] += 1
                if not d:
                    why.append(f"dead {dead} != {c['dead']}")
        if why:
            misses.append(f"{c['file']}: " + "; ".join(why))
    return {k: (v[0], v[1]) for k, v in n.items()}, misses


# --------------------------------------------------------------------------------------------
# Auto-replies


def ours_signals(raw: bytes) -> bool:
    from mailgate.loops import signals
    from mailgate.message import parse
    return bool(signals(parse(raw)).auto_reply)


def ours_classify(raw: bytes) -> bool:
    from mailgate.bounces import classify
    return classify(raw).kind == "auto-reply"


def _headers(raw: bytes) -> email.message.Message:
    return email.message_from_bytes(raw.split(b"\n\n", 1)[0] + b"\n\n")


def rfc3834_only(raw: bytes) -> bool:
    # RFC 3834 §5: any Auto-Submitted value other than "no" marks an automatic message
    v = str(_headers(raw).get("auto-submitted", "")).split(";")[0].strip().lower()
    return bool(v) and v != "no"


def rfc3834_vendor(raw: bytes) -> bool:
    """RFC 3834 plus the headers responders send instead (what most help desks check)."""
    h = _headers(raw)
    if rfc3834_only(raw):
        return True
    if any(h.get(n) is not None for n in ("x-autoreply", "x-autorespond", "x-autogenerated", "x-auto-reply")):
        return True
    if str(h.get("precedence", "")).strip().lower() == "auto_reply":
        return True
    return str(h.get("x-auto-response-suppress", "")).strip().lower() in ("all", "oof")


AUTO_RUNNERS: dict[str, Callable[[bytes], bool]] = {
    "ours (loops.signals)": ours_signals, "ours (bounces.classify)": ours_classify,
    "RFC 3834 only": rfc3834_only, "RFC 3834 + vendor headers": rfc3834_vendor}


def score_auto(s, run: Callable[[bytes], bool]) -> tuple[dict[str, tuple[int, int]], list[str]]:
    n = defaultdict(lambda: [0, 0])
    misses = []
    for c in s.cases:
        got = run(s.raw(c))
        key = "recall" if c["auto_reply"] else ("FP list mail" if c.get("list_mail") else "FP person mail")
        n[key][0] += got   # recall counts the auto-replies found; the FP columns the negatives taken
        n[key][1] += 1
        if got != c["auto_reply"]:
            misses.append(f"{c['file']}: auto_reply {got} (expected {c['auto_reply']})")
    return {k: (v[0], v[1]) for k, v in n.items()}, misses


# --------------------------------------------------------------------------------------------
# Reply text


def _plain(raw: bytes) -> str:
    text, html = bodies(raw)
    return text or html_text(html)


def ours_reply(raw: bytes) -> str:
    from mailgate.message import parse
    return parse(raw).reply_text


def talon_reply(raw: bytes) -> str:
    from talon import quotations, utils
    text, html = bodies(raw)
    if text:
        return quotations.extract_from_plain(text)
    out = utils.html_to_text(quotations.extract_from_html(html)) if html.strip() else b""
    return out.decode("utf-8", "replace") if isinstance(out, bytes) else (out or "")


def erp_reply(raw: bytes) -> str:
    from email_reply_parser import EmailReplyParser
    return EmailReplyParser.parse_reply(_plain(raw))


def mpr_reply(raw: bytes) -> str:
    from mailparser_reply import EmailReplyParser
    from mailparser_reply.constants import MAIL_LANGUAGES
    return EmailReplyParser(languages=list(MAIL_LANGUAGES)).parse_reply(text=_plain(raw)) or ""


REPLY_RUNNERS: dict[str, Callable[[bytes], str]] = {
    "ours": ours_reply, "talon": talon_reply, "email_reply_parser": erp_reply,
    "mail-parser-reply": mpr_reply, "input unchanged": _plain}


def score_reply(s, run: Callable[[bytes], str]) -> tuple[dict[str, tuple[int, int]], list[str]]:
    right, misses = 0, []
    for c in s.cases:
        try:
            got = run(s.raw(c))
        except Exception as exc:  # noqa: BLE001 - a baseline that crashes gets the case wrong
            got = f"<{type(exc).__name__}>"
        if reply_right(got, c):
            right += 1
        else:
            misses.append(f"{c['file']}: got {got[:160]!r}\n    want {c['reply'][:160]!r}")
    return {"exactly right": (right, len(s.cases))}, misses


# --------------------------------------------------------------------------------------------


TASKS: dict[str, tuple[dict[str, Callable], Callable]] = {
    "bounce": (BOUNCE_RUNNERS, score_bounces),
    "autoreply": (AUTO_RUNNERS, score_auto),
    "reply": (REPLY_RUNNERS, score_reply),
}
MEASURES = {"bounce": ("is-bounce", "recipients", "class", "dead"),
            "autoreply": ("recall", "FP list mail", "FP person mail"),
            "reply": ("exactly right",)}


def _available(name: str, fn: Callable, probe: bytes) -> str | None:
    try:
        fn(probe)
        return None
    except ImportError as exc:
        return f"{name}: not installed ({exc.name}); `make bench` installs the bench extra"
    except Exception:  # noqa: BLE001 - fails on this message only; scored per message
        return None


def _cell(v: tuple[int, int] | None) -> str:
    if not v or not v[1]:
        return "-"
    return f"{v[0]}/{v[1]} {100.0 * v[0] / v[1]:.0f}%"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--misses", metavar="SET", help="list our failures on one develop set (e.g. bounces/flufl-bounce)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    sets = load_sets()
    if args.misses:
        chosen = [s for s in sets if s.name == args.misses]
        if not chosen:
            print(f"no set {args.misses!r}; sets: {', '.join(s.name for s in sets)}")
            return 2
        if chosen[0].split != "develop":
            print(f"{args.misses} is a holdout set: it is only measured, its failures are not shown")
            return 2
        runners, scorer = TASKS[chosen[0].task]
        _, misses = scorer(chosen[0], next(iter(runners.values())))
        print("\n".join(misses) or "no failures")
        return 0

    totals: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for task in ("bounce", "autoreply", "reply"):
        runners, scorer = TASKS[task]
        task_sets = [s for s in sets if s.task == task]
        if not task_sets:
            continue
        probe = task_sets[0].raw(task_sets[0].cases[0])
        missing = [m for m in (_available(n, f, probe) for n, f in runners.items()) if m]
        live = {n: f for n, f in runners.items() if not any(m.startswith(n + ":") for m in missing)}
        print(f"\n== {task}: " + {"bounce": "is-bounce / failed recipients exact / status class / dead-or-alive",
                                   "autoreply": "recall on auto-replies / false positives on list mail / on person mail",
                                   "reply": "reply text exactly right (REPLY-RULES.md)"}[task])
        for m in missing:
            print(f"   ({m})")
        for s in task_sets:
            print(f"\n{s.name} [{s.split}] — {len(s.cases)} messages — {s.manifest['source']}")
            print(f"  {'':<26}" + "".join(f"{m:>16}" for m in MEASURES[task]))
            for name, fn in live.items():
                scores, _ = scorer(s, fn)
                print(f"  {name:<26}" + "".join(f"{_cell(scores.get(m)):>16}" for m in MEASURES[task]))
                for m, (a, b) in scores.items():
                    t = totals[(task, s.split, name, m)]
                    t[0] += a
                    t[1] += b

    print("\n== totals: develop (failures may be studied) vs holdout (only measured)")
    for task in ("bounce", "autoreply", "reply"):
        names = list(TASKS[task][0])
        for split in ("develop", "holdout"):
            rows = [(n, [totals.get((task, split, n, m)) for m in MEASURES[task]]) for n in names]
            rows = [(n, cells) for n, cells in rows if any(c and c[1] for c in cells)]
            if not rows:
                continue
            print(f"\n{task} / {split}")
            print(f"  {'':<26}" + "".join(f"{m:>16}" for m in MEASURES[task]))
            for n, cells in rows:
                print(f"  {n:<26}" + "".join(f"{_cell(tuple(c) if c else None):>16}" for c in cells))
    print(f"\n(ran in {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
