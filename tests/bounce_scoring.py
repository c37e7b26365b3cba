"""Scoring a bounce classifier against the bounce corpus (used by the corpus test and bench/bounces.py).

The corpus (`tests/data/bounces`, see its README) gives, per message, one entry per failed recipient
with Sisimai's reason and hard/soft verdict. Three measures per message:
- kind: feedback -> complaint, vacation -> auto-reply, delivered -> delivery-report, else bounce;
  the two messages under not-bounces/ are "normal";
- count: the number of recipients reported equals the number of expected entries;
- class: the permanent flags match (as sorted lists when the counts agree, else as sets).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

BOUNCES = Path(__file__).resolve().parent / "data" / "bounces"


def corpus_dir() -> Path:
    return BOUNCES


KIND_OF_REASON = {"feedback": "complaint", "vacation": "auto-reply", "delivered": "delivery-report"}


@dataclass
class Case:
    name: str
    path: Path
    kind: str
    permanent: list[bool]

    @property
    def system(self) -> str:
        return self.name.rsplit("-", 1)[0]


def load_cases() -> list[Case]:
    root = corpus_dir()
    expected = json.loads((root / "expected.json").read_text())
    cases = []
    for name, entries in sorted(expected.items()):
        kinds = {KIND_OF_REASON.get(e["reason"], "bounce") for e in entries}
        kind = kinds.pop() if len(kinds) == 1 else "bounce"
        cases.append(Case(name, root / "messages" / name, kind, [bool(e["hardbounce"]) for e in entries]))
    for p in sorted((root / "not-bounces").glob("*.eml")):
        cases.append(Case(p.name, p, "normal", []))
    return cases


@dataclass
class Outcome:
    kind: str
    permanent: list[bool]


@dataclass
class Score:
    total: int = 0
    kind: int = 0
    count: int = 0
    klass: int = 0
    misses: list[tuple[str, str]] = field(default_factory=list)

    def pct(self, n: int) -> float:
        return 100.0 * n / self.total if self.total else 0.0


def score(cases: Iterable[Case], run: Callable[[bytes], Outcome]) -> tuple[Score, dict[str, Score]]:
    overall = Score()
    per_system: dict[str, Score] = defaultdict(Score)
    for case in cases:
        got = run(case.path.read_bytes())
        k = got.kind == case.kind
        n = len(got.permanent) == len(case.permanent)
        if n:
            c = sorted(got.permanent) == sorted(case.permanent)
        else:
            c = set(got.permanent) == set(case.permanent)
        for s in (overall, per_system[case.system]):
            s.total += 1
            s.kind += k
            s.count += n
            s.klass += c
        if not (k and n and c):
            overall.misses.append((case.name, f"kind {got.kind}/{case.kind} n {len(got.permanent)}/"
                                   f"{len(case.permanent)} perm {got.permanent}/{case.permanent}"))
    return overall, dict(per_system)


def ours(raw: bytes) -> Outcome:
    from mailgate.bounces import classify

    r = classify(raw)
    return Outcome(r.kind, [x.permanent for x in r.recipients])


def flufl_alone(raw: bytes) -> Outcome:
    """flufl.bounce by itself: a bounce when it finds failures; permanent = its permanent set."""
    import email

    from flufl.bounce import all_failures

    try:
        permanent, temporary = all_failures(email.message_from_bytes(raw))
    except Exception:
        return Outcome("normal", [])
    perm = [True] * len(permanent) + [False] * len(temporary - permanent)
    return Outcome("bounce" if perm else "normal", perm)
