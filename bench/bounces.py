"""Bounce classification on the bounce corpus (tests/data/bounces): accuracy and speed, ours vs flufl.bounce alone.

Run from the repository root:
    PYTHONPATH=$PWD/layers/core:$PWD/dev:$PWD python bench/bounces.py [--per-system] [--repeat N]

Prints (1) the share of the 591 messages whose kind, number of failed recipients and
permanent/temporary class match the corpus's expected answers, for our classifier and for
flufl.bounce by itself, with the ratio; (2) the same per sending system; (3) the time to classify
one message, ours and flufl.bounce's, with the ratio — all measured in this run.
"""

from __future__ import annotations

import argparse
import email
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dev"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "core"))

from tests.bounce_scoring import flufl_alone, load_cases, ours, score  # noqa: E402


def _fmt(n: int, total: int) -> str:
    return f"{100.0 * n / total:5.1f}%" if total else "   - "


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-system", action="store_true", help="also print the table per sending system")
    ap.add_argument("--repeat", type=int, default=3, help="timing passes over the corpus")
    args = ap.parse_args()

    cases = load_cases()
    o, o_sys = score(cases, ours)
    f, f_sys = score(cases, flufl_alone)

    print(f"Bounce corpus: {o.total} messages ({len(o_sys)} sending systems)\n")
    print(f"{'measure':<34}{'ours':>8}{'flufl.bounce':>14}{'ours/flufl':>12}")
    for label, a, b in (("kind matches", o.kind, f.kind),
                        ("number of failed recipients", o.count, f.count),
                        ("permanent/temporary class", o.klass, f.klass)):
        ratio = f"{a / b:.2f}x" if b else "-"
        print(f"{label:<34}{_fmt(a, o.total):>8}{_fmt(b, f.total):>14}{ratio:>12}")

    bounce_cases = [c for c in cases if c.kind == "bounce"]
    ob, _ = score(bounce_cases, ours)
    fb, _ = score(bounce_cases, flufl_alone)
    print(f"{'failed recipients, bounces only (' + str(ob.total) + ')':<34}{_fmt(ob.count, ob.total):>8}"
          f"{_fmt(fb.count, fb.total):>14}{(ob.count / fb.count if fb.count else 0):>11.2f}x")
    print(f"{'class, bounces only':<34}{_fmt(ob.klass, ob.total):>8}{_fmt(fb.klass, fb.total):>14}"
          f"{(ob.klass / fb.klass if fb.klass else 0):>11.2f}x")

    if args.per_system:
        print(f"\n{'system':<24}{'n':>4} | {'ours kind':>9}{'count':>7}{'class':>7} | "
              f"{'flufl kind':>10}{'count':>7}{'class':>7}")
        for system in sorted(o_sys):
            a, b = o_sys[system], f_sys[system]
            print(f"{system:<24}{a.total:>4} | {_fmt(a.kind, a.total):>9}{_fmt(a.count, a.total):>7}"
                  f"{_fmt(a.klass, a.total):>7} | {_fmt(b.kind, b.total):>10}{_fmt(b.count, b.total):>7}"
                  f"{_fmt(b.klass, b.total):>7}")

    raws = [c.path.read_bytes() for c in cases]
    from flufl.bounce import all_failures

    from mailgate.bounces import classify

    def flufl_run(raw: bytes) -> None:
        try:
            all_failures(email.message_from_bytes(raw))
        except Exception:
            pass

    timings = {}
    for name, fn in (("ours (classify)", classify), ("flufl.bounce (parse + all_failures)", flufl_run)):
        per_msg = []
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            for raw in raws:
                fn(raw)
            per_msg.append((time.perf_counter() - t0) / len(raws))
        timings[name] = statistics.median(per_msg)
    base = timings["flufl.bounce (parse + all_failures)"]
    print(f"\n{'time per message (median of ' + str(args.repeat) + ' passes)':<42}{'ms':>8}{'ratio to flufl':>16}")
    for name, t in timings.items():
        print(f"{name:<42}{t * 1000:>8.3f}{t / base:>15.2f}x")
    worst = max(raws, key=len)
    t0 = time.perf_counter()
    classify(worst)
    print(f"{'largest message (' + str(len(worst) // 1024) + ' KiB), ours':<42}{(time.perf_counter() - t0) * 1000:>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
