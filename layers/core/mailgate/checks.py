"""Verdicts of a step-by-step check (Test Connection, DNS check), for people and for --json."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Step:
    """One step of a check: `ok` True/False, `detail` says what was seen and, on failure, the fix."""

    name: str
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def all_ok(steps: list[Step]) -> bool:
    return bool(steps) and all(s.ok for s in steps)
