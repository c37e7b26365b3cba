"""Hunts for super-linear time and unbounded memory: adversarial and heavy mail, by family.

    .venv/bin/python bench/hostile.py [--quick] [--family NAME ...] [--n N] [--json]
                                      [--timeout S] [--memory-limit MB] [--profile] [--no-cases]
                                      [--save FILE]

Each family (tests/hostile.py) is built at size n and 10n and measured two ways:

  in-process  every stage of the inbound path, one after the other, in a forked child (so a
              runaway case is killed at --timeout and charged to the stage it was in):
                stdlib       email.message_from_bytes (compat32), the parser message.parse wraps
                parse        mailgate.message.parse (headers and addresses are read here)
                headers      every header value decoded (RFC 2047), as the CLI and events do
                body         .text / .html / .attachments (the MIME walk and decoding)
                html_to_text mailgate.message.html_to_text(.html)
                reply_text   .reply_text (quote and signature trimming)
                attachments  every attachment's .data()
                signals      mailgate.loops.signals
                classify     mailgate.bounces.classify(raw)
                ingest       mailgate.services.inbound.ingest on the in-memory fakes (parses again)
              The sequence is repeated (a fresh parse each round: 10 rounds for a fast message, 2
              or 3 under 3 s, one beyond) and each stage's fastest round is kept. A second child,
              at 10n (when its stages take under 5 s), measures each stage's peak with tracemalloc.
  process     `mailgate inspect FILE --json` as a whole process at 10n: wall time and peak RSS
              (wait4), checked against the targets: 2 s + 0.1 s per MB, 200 MB + 4x the message size.

ratio = t(10n) / t(n) of the stage that grows fastest (among stages over 20 ms at 10n): a linear
stage gives about 10; 20 or more is flagged super-linear (a fast family so flagged is measured a
second time first). s/MB is the in-process time of all our stages at 10n per MB of message. Then
the fixed cases (failures seen in the field, at the sizes they were seen, and legitimate heavy
mail) are measured as a whole process against the same targets. The run ends with the list of
families and cases that fail linearity or a target; the exit status is 0 either way (figures,
not a test). --profile prints, per stage, the functions that take the time and the lines that
call the hottest built-ins (a regex shows as one `search`/`sub`/`match` call).

Figures are wall-clock on a shared machine: compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import cProfile
import email
import email.policy
import gc
import io
import json
import os
import pathlib
import pstats
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "core"), str(ROOT / "dev"), str(ROOT)]

from tests import hostile  # noqa: E402

MB = 1 << 20
SUPERLINEAR = 20.0          # ratio 10n/n at or above which a family is flagged
NOISE_FLOOR = 0.020         # stages faster than this at 10n are not used for the ratio
#: the tracemalloc pass (which runs every stage again) is skipped above this in-process time
MEMORY_PASS_MAX = 5.0
#: a family flagged super-linear whose 10n takes less than this is measured a second time
CONFIRM_MAX = 1.0
#: a fixed case is also run in-process (for its stage times) when inspect took less than this
CASE_STAGES_MAX = 5.0
EVENT_LIMIT = 256 * 1024    # EventBridge entry size


def _import(candidates: list[tuple[str, str]]) -> Any:
    """The first of (module, attribute) that imports: names may move while the core is refactored."""
    import importlib

    tried = []
    for mod, attr in candidates:
        try:
            module = importlib.import_module(mod)
        except ImportError:
            tried.append(mod)
            continue
        if not attr:
            return module
        if hasattr(module, attr):
            return getattr(module, attr)
        tried.append(f"{mod}.{attr}")
    name = candidates[0][1] or candidates[0][0]
    raise SystemExit(f"bench/hostile.py: cannot find {name} (tried {', '.join(tried)})")


parse = _import([("mailgate.message", "parse")])
html_to_text = _import([("mailgate.htmltext", "html_to_text"), ("mailgate.message", "html_to_text")])
decode_header_value = _import([("mailgate.mime", "decode_header_value"), ("mailgate.message", "decode_header_value")])
classify = _import([("mailgate.bounces", "classify")])
signals = _import([("mailgate.loops", "signals")])
inbound = _import([("mailgate.services.inbound", "")])
in_memory = _import([("mailgate_dev.fakes", "in_memory"), ("mailgate.bootstrap", "in_memory")])
Alias = _import([("mailgate.domain", "Alias")])
AliasDomain = _import([("mailgate.domain", "AliasDomain")])


def container():
    """example.test with a sales alias, on the in-memory fakes."""
    c = in_memory()
    c.config.put_domain(AliasDomain("example.test"))
    c.config.put_alias(Alias("example.test", "sales", "crm.lead"))
    return c


# --- the stages ----------------------------------------------------------------------------------

STAGES = ("stdlib", "parse", "headers", "body", "html_to_text", "reply_text", "attachments", "signals",
          "classify", "ingest")
#: our own stages (stdlib is the baseline: the parser message.parse wraps)
OURS = tuple(s for s in STAGES if s != "stdlib")


def pipeline(raw: bytes, recipients: tuple[str, ...]) -> list[tuple[str, Callable[[dict], Any]]]:
    """The stages as (name, fn(state)); each one reads what the stages before it left in `state`."""

    def stdlib(s):
        email.message_from_bytes(raw, policy=email.policy.compat32)

    def do_parse(s):
        s["p"] = parse(raw)
        lost = [d for d in s["p"].defects if d.startswith("unparseable")]
        if lost:  # parse never raises: a parser failure shows here, with every header lost
            s["info"]["parse_failed"] = lost[0][:200]

    def headers(s):
        for values in s["p"].headers.values():
            for v in values:
                decode_header_value(v)

    def body(s):
        p = s["p"]
        s["text"], s["html"], s["atts"] = p.text, p.html, p.attachments
        s["info"]["text_chars"], s["info"]["html_chars"] = len(s["text"]), len(s["html"])

    def h2t(s):
        html_to_text(s["html"])

    def reply(s):
        s["info"]["reply_chars"] = len(s["p"].reply_text)

    def attachments(s):
        s["info"]["attachment_bytes"] = sum(len(a.data()) for a in s["atts"])

    def sig(s):
        signals(s["p"])

    def cls(s):
        report = classify(raw)
        s["info"]["kind"] = report.kind
        if report.error.startswith("unreadable"):  # classify never raises either
            s["info"]["classify_failed"] = report.error[:200]

    def ingest(s):
        c = s.pop("c")
        rec = inbound.ingest(c, "raw/ses/hostile", source="ses", envelope_recipients=list(recipients))
        s["info"]["outcome"] = rec.outcome
        if rec.outcome == "failed":
            s["info"]["reason"] = rec.reason[:200]
        sizes = [len(json.dumps(detail, default=str).encode()) for _, detail in c.events.published]
        s["info"]["event_bytes"] = max(sizes, default=0)

    return [("stdlib", stdlib), ("parse", do_parse), ("headers", headers), ("body", body),
            ("html_to_text", h2t), ("reply_text", reply), ("attachments", attachments), ("signals", sig),
            ("classify", cls), ("ingest", ingest)]


#: what the later stages read when the body stage raised (its error is reported once)
_EMPTY_BODY = {"text": "", "html": "", "atts": []}


def _prepare_ingest(state: dict, raw: bytes) -> None:
    c = container()
    c.raw_store.put("raw/ses/hostile", raw)
    state["c"] = c


def _limit_memory(limit_mb: int) -> None:
    if limit_mb > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit_mb * MB, limit_mb * MB))


# --- running a stage sequence in a child, with a deadline --------------------------------------

@dataclass
class ChildResult:
    stages: dict[str, float] = field(default_factory=dict)       # seconds (fastest round)
    memory: dict[str, float] = field(default_factory=dict)       # traced peak MB per stage
    errors: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    timed_out: str = ""          # the stage that was running when the deadline passed
    wall: float = 0.0


def _rounds_wanted(first: float) -> int:
    """Rounds to take the fastest of: many for a fast message (timer and load noise), two or three
    for one that takes seconds (so n and 10n are both a minimum of several), one beyond that."""
    if first < 0.05:
        return 10
    return 3 if first < 1.0 else 2 if first < 3.0 else 1


def _child_times(raw: bytes, recipients, out) -> None:
    best: dict[str, float] = {}
    info: dict[str, Any] = {}
    spent, rounds, wanted = 0.0, 0, 1
    while rounds < wanted:
        state: dict[str, Any] = {"info": info, **_EMPTY_BODY}
        for name, fn in pipeline(raw, recipients):
            if name == "ingest":
                _prepare_ingest(state, raw)
            if rounds == 0:
                out({"start": name})
            t0 = time.perf_counter()
            try:
                fn(state)
            except BaseException as exc:  # noqa: BLE001 - reported; RecursionError, MemoryError included
                if rounds == 0:
                    out({"error": name, "what": f"{type(exc).__name__}: {str(exc)[:200]}"})
                if name == "parse":
                    break
                continue
            dt = time.perf_counter() - t0
            spent += dt
            best[name] = min(best.get(name, dt), dt)
            if rounds == 0:
                out({"stage": name, "s": dt})
        rounds += 1
        if rounds == 1:
            wanted = _rounds_wanted(spent)
    out({"best": best, "info": info, "rounds": rounds})


def _child_memory(raw: bytes, recipients, out) -> None:
    state: dict[str, Any] = {"info": {}, **_EMPTY_BODY}
    gc.collect()
    tracemalloc.start()
    for name, fn in pipeline(raw, recipients):
        if name == "ingest":
            _prepare_ingest(state, raw)
        out({"start": name})
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            fn(state)
        except BaseException as exc:  # noqa: BLE001
            out({"error": name, "what": f"{type(exc).__name__}: {str(exc)[:200]}"})
            if name == "parse":
                break
            continue
        out({"mem": name, "mb": (tracemalloc.get_traced_memory()[1] - base) / MB})
    tracemalloc.stop()


def _child_profile(raw: bytes, recipients, out, top: int = 12) -> None:
    state: dict[str, Any] = {"info": {}, **_EMPTY_BODY}
    for name, fn in pipeline(raw, recipients):
        if name == "ingest":
            _prepare_ingest(state, raw)
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        try:
            prof.runcall(fn, state)
        except BaseException as exc:  # noqa: BLE001
            out({"error": name, "what": f"{type(exc).__name__}: {str(exc)[:200]}"})
            if name == "parse":
                break
            continue
        dt = time.perf_counter() - t0
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf).sort_stats("tottime")
        stats.print_stats(top)
        lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
        start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
        text = "\n".join(lines[start:])
        # A regex method shows as one built-in: name the lines that call the hottest ones.
        for func in stats.fcn_list[:4]:
            if func[0] != "~":
                continue
            callers = sorted(_callers(stats, func).items(), key=lambda kv: -kv[1])[:3]
            text += f"\n    {func[2]} called from: " + ", ".join(f"{_where(c)} {t:.3f}s" for c, t in callers)
        out({"profile": name, "s": dt, "text": text})


def _callers(stats: pstats.Stats, func) -> dict:
    """Callers of `func` and the time spent in it from each; the `re` module's wrappers (re.sub,
    re.findall, ...) are looked through to the lines that called them (time shared in proportion)."""
    out: dict = {}
    for caller, (_, _, _, ct) in stats.stats[func][4].items():
        if caller[0].endswith(("re/__init__.py", "re\\__init__.py")) and caller in stats.stats:
            ups = _callers(stats, caller)
            total = sum(ups.values()) or 1.0
            for up, t in ups.items():
                out[up] = out.get(up, 0.0) + ct * t / total
        else:
            out[caller] = out.get(caller, 0.0) + ct
    return out


def _where(func) -> str:
    path, line, name = func
    p = pathlib.Path(path)
    try:
        path = str(p.relative_to(ROOT))
    except ValueError:
        path = "/".join(p.parts[-2:]) if "python3" in path else p.name
    return f"{path}:{line}({name})"


def run_child(target: Callable, raw: bytes, recipients, *, timeout: float,
              memory_limit: int) -> tuple[ChildResult, list]:
    """Run target(raw, recipients, out) in a forked child; messages come back as JSON lines."""
    rfd, wfd = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(rfd)
        code = 0
        try:
            _limit_memory(memory_limit)
            with os.fdopen(wfd, "w", buffering=1) as pipe:
                def out(msg):
                    pipe.write(json.dumps(msg) + "\n")
                target(raw, recipients, out)
        except BaseException:  # noqa: BLE001
            code = 1
        os._exit(code)
    os.close(wfd)
    result, messages = ChildResult(), []
    deadline = time.perf_counter() + timeout
    buf, current = b"", ""
    with os.fdopen(rfd, "rb", buffering=0) as pipe:
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                result.timed_out = current or "start"
                os.kill(pid, signal.SIGKILL)
                break
            ready, _, _ = select.select([pipe], [], [], left)
            if not ready:
                continue
            chunk = pipe.read(65536)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                msg = json.loads(line)
                messages.append(msg)
                if "start" in msg:
                    current = msg["start"]
                elif "error" in msg:
                    result.errors[msg["error"]] = msg["what"]
                elif "best" in msg:
                    result.stages, result.info = msg["best"], msg["info"]
                elif "mem" in msg:
                    result.memory[msg["mem"]] = msg["mb"]
    _, status = os.waitpid(pid, 0)
    result.wall = time.perf_counter() - t0
    if not result.timed_out and os.waitstatus_to_exitcode(status) != 0 and not result.errors:
        result.errors["child"] = f"exit status {os.waitstatus_to_exitcode(status)} (killed by the memory limit?)"
    if result.timed_out:  # what finished before the deadline still tells where the time went
        result.stages = {m["stage"]: m["s"] for m in messages if "stage" in m}
    return result, messages


# --- the whole process: mailgate inspect ---------------------------------------------------------

def mailgate_command() -> list[str]:
    script = pathlib.Path(sys.executable).with_name("mailgate")
    if script.exists():
        return [str(script)]
    for module in ("mailgate_dev.cli.main", "mailgate.cli.main"):  # the CLI moved to the development package
        try:
            __import__(module)
        except ImportError:
            continue
        return [sys.executable, "-c", f"import sys; from {module} import main; sys.exit(main())"]
    raise SystemExit("bench/hostile.py: no `mailgate` command next to this Python and no CLI module to run")


@dataclass
class ProcessResult:
    wall: float = 0.0
    rss_mb: float = 0.0
    status: str = "ok"          # ok | timeout | memory (MemoryError under the cap) | error: ...

    def time_ok(self, size: int) -> bool:
        return self.status == "ok" and self.wall <= time_target(size)

    def memory_ok(self, size: int) -> bool:
        return self.status != "memory" and self.rss_mb <= memory_target(size)


def time_target(size: int) -> float:
    return 2.0 + 0.1 * size / MB


def memory_target(size: int) -> float:
    return 200.0 + 4.0 * size / MB


#: Runs one command and reports its own peak RSS. A child forked straight from this bench would
#: count the bench's memory in its ru_maxrss (fork copies the page tables; exec keeps the high-water
#: mark), so a small launcher process forks the command instead.
_LAUNCHER = r"""
import os, resource, sys, time
report, limit, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.execv(argv[0], argv)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as f:
    f.write("%f %d %d" % (time.perf_counter() - t0, usage.ru_maxrss, os.waitstatus_to_exitcode(status)))
"""


def run_inspect(raw: bytes, *, timeout: float, memory_limit: int) -> ProcessResult:
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        path = pathlib.Path(tmp) / "message.eml"
        path.write_bytes(raw)
        out_path, err_path = pathlib.Path(tmp) / "out.json", pathlib.Path(tmp) / "err.txt"
        report = pathlib.Path(tmp) / "rusage"
        command = mailgate_command() + ["inspect", str(path), "--json"]
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(report), str(memory_limit * MB)] + command,
                                    stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                proc.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the command it started
                proc.wait()
                timed_out = True
        if timed_out:
            return ProcessResult(wall=timeout, status="timeout")
        wall, maxrss, code = report.read_text().split()
        result = ProcessResult(wall=float(wall), rss_mb=int(maxrss) / 1024)
        if int(code) != 0:
            tail = err_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
            result.status = "memory" if "MemoryError" in tail[0] else f"error: exit {code}: {tail[0][:120]}"
        else:
            try:
                json.loads(out_path.read_bytes())
            except ValueError as exc:
                result.status = f"error: output is not JSON ({exc})"
    return result


# --- measuring a family and a case ---------------------------------------------------------------

@dataclass
class SizeResult:
    n: int
    size: int
    times: ChildResult
    process: ProcessResult | None = None


@dataclass
class FamilyResult:
    name: str
    what: str
    unit: str
    small: SizeResult
    large: SizeResult
    memory: ChildResult | None = None
    flags: list[str] = field(default_factory=list)
    ratio: float | None = None
    ratio_stage: str = ""
    ratio_at_least: bool = False   # the 10n stage ran out of time: the ratio is a lower bound
    timeout: float = 0.0

    def stage_ratios(self) -> dict[str, float]:
        a, b = self.small.times.stages, self.large.times.stages
        return {s: b[s] / a[s] for s in STAGES if s in a and s in b and a[s] > 0}


def ours_total(times: ChildResult) -> float:
    return sum(v for k, v in times.stages.items() if k in OURS)


def measure_family(fam: hostile.Family, n: int, args) -> FamilyResult:
    sizes = []
    for k in (n, 10 * n):
        raw = fam.message(k)
        times, _ = run_child(_child_times, raw, fam.recipients, timeout=args.timeout, memory_limit=args.memory_limit)
        sr = SizeResult(k, len(raw), times)
        if not args.no_inspect and k == 10 * n:  # the targets are met at 10n or not at all
            sr.process = run_inspect(raw, timeout=args.timeout, memory_limit=args.memory_limit)
        sizes.append(sr)
    res = FamilyResult(fam.name, fam.what, fam.unit, sizes[0], sizes[1], timeout=args.timeout)
    judge(res)
    if res.ratio is not None and res.ratio >= SUPERLINEAR and ours_total(res.large.times) < CONFIRM_MAX:
        # A fast family flagged super-linear: measure both sizes once more and keep each stage's
        # fastest, so that a burst of load on the shared machine does not raise a false alarm.
        for sr in (res.small, res.large):
            again, _ = run_child(_child_times, fam.message(sr.n), fam.recipients, timeout=args.timeout,
                                 memory_limit=args.memory_limit)
            for stage, t in again.stages.items():
                sr.times.stages[stage] = min(t, sr.times.stages.get(stage, t))
        res.flags, res.ratio, res.ratio_stage, res.ratio_at_least = [], None, "", False
        judge(res)
    if not args.no_memory and not res.large.times.timed_out and ours_total(res.large.times) < MEMORY_PASS_MAX:
        res.memory, _ = run_child(_child_memory, fam.message(res.large.n), fam.recipients, timeout=args.timeout,
                                  memory_limit=args.memory_limit)
    return res


def _failures(times: ChildResult, where: str) -> list[str]:
    """What went wrong inside the stages, besides time: an exception that escaped one of our entry
    points (the stdlib baseline may raise: parse is there to survive it), parse or classify
    giving up on the message."""
    out = [f"RAISES in {stage}{where}: {what[:80]}" for stage, what in times.errors.items() if stage != "stdlib"]
    if "parse_failed" in times.info:
        out.append(f"parse lost the headers{where}: {times.info['parse_failed'][:80]}")
    if "classify_failed" in times.info:
        out.append(f"classify gave up{where}: {times.info['classify_failed'][:80]}")
    return out


def judge(res: FamilyResult) -> None:
    small, large = res.small.times, res.large.times
    if large.timed_out or small.timed_out:
        which = small if small.timed_out else large
        res.flags.append(f"TIMEOUT in {which.timed_out}")
    ratios = res.stage_ratios()
    counted = {s: r for s, r in ratios.items() if large.stages.get(s, 0) >= NOISE_FLOOR and s in OURS}
    if large.timed_out and not small.timed_out:
        # The stage that ran out of time at 10n grew at least this much: deadline / t(n).
        res.ratio_stage, res.ratio_at_least = large.timed_out, True
        res.ratio = res.timeout / max(small.stages.get(large.timed_out, 0.0), 1e-6)
        if res.ratio >= SUPERLINEAR:
            res.flags.append(f"SUPER-LINEAR {res.ratio_stage} x{res.ratio:.0f} or more")
    elif counted:
        res.ratio_stage, res.ratio = max(counted.items(), key=lambda kv: kv[1])
        if res.ratio >= SUPERLINEAR:
            res.flags.append(f"SUPER-LINEAR {res.ratio_stage} x{res.ratio:.0f}")
    for sr in (res.small, res.large):
        label = f"{sr.n} {res.unit}"
        res.flags += _failures(sr.times, f" at {label}")
        if sr.process is not None:
            p = sr.process
            if p.status == "timeout":
                res.flags.append(f"inspect TIMEOUT at {label}")
            elif p.status.startswith("error"):
                res.flags.append(f"inspect {p.status} at {label}")
            elif not p.time_ok(sr.size):
                res.flags.append(f"inspect TIME {p.wall:.1f}s > {time_target(sr.size):.1f}s at {label}")
            if not p.memory_ok(sr.size):
                res.flags.append(f"inspect MEMORY {p.rss_mb:.0f}MB > {memory_target(sr.size):.0f}MB at {label}")
        ev = sr.times.info.get("event_bytes", 0)
        if ev > EVENT_LIMIT:
            res.flags.append(f"EVENT {ev // 1024}KB > 256KB at {label}")
        if sr.times.info.get("outcome") == "failed":
            res.flags.append(f"ingest failed at {label}: {sr.times.info.get('reason', '')[:80]}")


@dataclass
class CaseResult:
    name: str
    what: str
    family: str
    size: int
    process: ProcessResult
    times: ChildResult | None = None
    flags: list[str] = field(default_factory=list)


def measure_case(case: hostile.Case, args) -> CaseResult:
    raw = case.build()
    proc = run_inspect(raw, timeout=args.timeout, memory_limit=args.memory_limit)
    res = CaseResult(case.name, case.what, case.family, len(raw), proc)
    if proc.status == "ok" and proc.wall < CASE_STAGES_MAX:
        # The stages, for where the time goes; when inspect is slow already, the family's rows
        # above say it at a size that finishes sooner.
        res.times, _ = run_child(_child_times, raw, case.recipients, timeout=args.timeout,
                                 memory_limit=args.memory_limit)
    if proc.status == "timeout":
        res.flags.append(f"inspect TIMEOUT > {args.timeout:.0f}s")
    elif proc.status == "memory":
        res.flags.append(f"inspect MemoryError (address space capped at {args.memory_limit} MB)")
    elif proc.status.startswith("error"):
        res.flags.append(f"inspect {proc.status}")
    elif not proc.time_ok(res.size):
        res.flags.append(f"TIME {proc.wall:.1f}s > {time_target(res.size):.1f}s")
    if proc.status != "memory" and not proc.memory_ok(res.size):
        res.flags.append(f"MEMORY {proc.rss_mb:.0f}MB > {memory_target(res.size):.0f}MB")
    if res.times is not None:
        ev = res.times.info.get("event_bytes", 0)
        if ev > EVENT_LIMIT:
            res.flags.append(f"EVENT {ev // 1024}KB > 256KB")
        res.flags += _failures(res.times, "")
        if res.times.info.get("outcome") == "failed":
            res.flags.append(f"ingest failed: {res.times.info.get('reason', '')[:80]}")
    return res


# --- printing -------------------------------------------------------------------------------------

def _kb(size: int) -> str:
    return f"{size / 1024:.0f}K" if size < 10 * MB else f"{size / MB:.0f}M"


def _s(t: float | None, timed_out: str = "", timeout: float = 0) -> str:
    if timed_out:
        return f">{timeout:.0f}"
    return "-" if t is None else f"{t:.3f}" if t < 10 else f"{t:.1f}"


def _slowest(times: ChildResult) -> str:
    if times.timed_out:
        return f"{times.timed_out} (timeout)"
    ours = {k: v for k, v in times.stages.items() if k in OURS and k != "ingest"}
    if not ours:
        return "-"
    name, t = max(ours.items(), key=lambda kv: kv[1])
    return f"{name} {t:.3f}"


def print_families(results: list[FamilyResult], args) -> None:
    head = (f"{'family':<22} {'n':>7} {'size':>6} {'t(n)':>7} {'size':>6} {'t(10n)':>7} {'ratio':>6} "
            f"{'stage':<12} {'s/MB':>7} {'slowest@10n (s)':<24} {'peak MB (stage)':>14} {'inspect s':>9} {'RSS MB':>7} "
            f"{'ev KB':>6}  verdict")
    print(head)
    print("-" * len(head))
    for r in results:
        a, b = r.small, r.large
        t_small = _s(ours_total(a.times), a.times.timed_out, args.timeout)
        t_large = _s(ours_total(b.times), b.times.timed_out, args.timeout)
        ratio = "-" if r.ratio is None else f">{r.ratio:.0f}" if r.ratio_at_least else f"{r.ratio:.1f}"
        per_mb = "-" if b.times.timed_out else f"{ours_total(b.times) / (b.size / MB):.2f}"
        ours_mem = {k: v for k, v in (r.memory.memory if r.memory else {}).items() if k in OURS}
        mem = "-"
        if ours_mem:
            stage, peak = max(ours_mem.items(), key=lambda kv: kv[1])
            mem = f"{peak:.0f} {stage}" if peak >= 1 else f"{peak:.1f}"

        def insp(sr: SizeResult) -> tuple[str, str]:
            if sr.process is None:
                return "-", "-"
            p = sr.process
            if p.status == "timeout":
                return f">{args.timeout:.0f}", "-"
            t = "err" if p.status.startswith("error") else f"{p.wall:.2f}"
            return t, f"{p.rss_mb:.0f}"
        ib, rb = insp(b)
        ev = max(a.times.info.get("event_bytes", 0), b.times.info.get("event_bytes", 0))
        verdict = "ok" if not r.flags else "FAIL"
        print(f"{r.name:<22} {a.n:>7} {_kb(a.size):>6} {t_small:>7} {_kb(b.size):>6} {t_large:>7} {ratio:>6} "
              f"{r.ratio_stage:<12} {per_mb:>7} {_slowest(b.times):<24} {mem:>14} {ib:>9} {rb:>7} "
              f"{ev / 1024:>6.0f}  {verdict}")


def print_cases(results: list[CaseResult], args) -> None:
    head = (f"{'case':<24} {'size':>6} {'inspect s':>9} {'target':>7} {'RSS MB':>7} {'target':>7} "
            f"{'slowest stages (s)':<44} verdict")
    print(head)
    print("-" * len(head))
    for r in results:
        p = r.process
        t = f">{args.timeout:.0f}" if p.status == "timeout" else "err" if p.status != "ok" else f"{p.wall:.2f}"
        stages = "-"
        if r.times is not None:
            top = sorted(((v, k) for k, v in r.times.stages.items() if k in OURS), reverse=True)[:3]
            stages = ", ".join(f"{k} {v:.2f}" for v, k in top)
        else:
            stages = f"(see family {r.family})"
        rss = "-" if p.status == "timeout" else f"{p.rss_mb:.0f}"
        print(f"{r.name:<24} {_kb(r.size):>6} {t:>9} {time_target(r.size):>7.1f} {rss:>7} "
              f"{memory_target(r.size):>7.0f} {stages:<44} {'ok' if not r.flags else 'FAIL'}")


def print_failures(families: list[FamilyResult], cases: list[CaseResult], args) -> None:
    failing = [r for r in families if r.flags] + [c for c in cases if c.flags]
    print(f"\nFail linearity or a target: {len(failing)} of {len(families) + len(cases)}")
    for r in families:
        if not r.flags:
            continue
        print(f"  {r.name} ({r.what}): " + "; ".join(r.flags))
        a, b = r.small.times.stages, r.large.times.stages
        grow = [f"{s} {a[s]:.3f}->{b[s]:.3f}" + (f" x{b[s] / a[s]:.0f}" if a[s] > 0 else "")
                for s in STAGES if s in a and s in b and b[s] >= NOISE_FLOOR]
        if r.large.times.timed_out:
            grow.append(f"{r.large.times.timed_out} >{args.timeout:.0f}s at 10n")
        if grow:
            print(f"      stages n->10n: {', '.join(grow)}")
    for c in cases:
        if c.flags:
            print(f"  case {c.name} ({c.what}, {_kb(c.size)}): " + "; ".join(c.flags))


def as_json(families: list[FamilyResult], cases: list[CaseResult]) -> dict:
    def child(c: ChildResult | None):
        if c is None:
            return None
        return {"stages": c.stages, "memory_mb": c.memory, "errors": c.errors, "info": c.info,
                "timed_out": c.timed_out, "wall": round(c.wall, 3)}

    def proc(p: ProcessResult | None):
        return None if p is None else {"wall": round(p.wall, 3), "rss_mb": round(p.rss_mb, 1), "status": p.status}

    return {
        "targets": {"time": "2 s + 0.1 s per MB", "memory": "200 MB + 4x the message size"},
        "families": [{
            "name": r.name, "what": r.what, "unit": r.unit, "ratio": r.ratio, "ratio_stage": r.ratio_stage,
            "ratio_is_a_lower_bound": r.ratio_at_least,
            "flags": r.flags, "memory": child(r.memory),
            "sizes": [{"n": s.n, "bytes": s.size, "in_process": child(s.times), "inspect": proc(s.process),
                       "time_target": time_target(s.size), "memory_target": memory_target(s.size)}
                      for s in (r.small, r.large)],
        } for r in families],
        "cases": [{"name": c.name, "what": c.what, "family": c.family, "bytes": c.size, "flags": c.flags,
                   "inspect": proc(c.process), "in_process": child(c.times),
                   "time_target": time_target(c.size), "memory_target": memory_target(c.size)} for c in cases],
    }


def profile(fam: hostile.Family, n: int, args) -> None:
    raw = fam.message(n)
    print(f"\n=== profile {fam.name} at n={n} ({_kb(len(raw))}): stages over 10% of the time")
    res, messages = run_child(_child_profile, raw, fam.recipients, timeout=args.timeout,
                              memory_limit=args.memory_limit)
    profs = [m for m in messages if "profile" in m]
    total = sum(m["s"] for m in profs) or 1
    for m in profs:
        if m["s"] >= 0.1 * total and m["profile"] != "stdlib":
            print(f"--- {m['profile']}: {m['s']:.3f}s\n{m['text']}")
    if res.timed_out:
        print(f"--- {res.timed_out}: over {args.timeout:.0f}s (killed; profile a smaller --n)")
    for stage, what in res.errors.items():
        print(f"--- {stage} raised {what}")


def _warm_up() -> None:
    """Imports and regex compilation happen once, before the children fork."""
    fam = hostile.BY_NAME["quoted-thread"]
    raw = fam.message(2)
    state: dict[str, Any] = {"info": {}}
    for name, fn in pipeline(raw, fam.recipients):
        if name == "ingest":
            _prepare_ingest(state, raw)
        fn(state)
    bounce = hostile.BY_NAME["dsn-many-recipients"].message(2)
    classify(bounce)
    inbound.ingest(container_with(bounce), "raw/ses/hostile", source="ses", envelope_recipients=["bounce@example.test"])


def container_with(raw: bytes):
    c = container()
    c.raw_store.put("raw/ses/hostile", raw)
    return c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (n/10) and no fixed cases: a smoke run")
    ap.add_argument("--family", action="append", metavar="NAME", help="only this family (repeatable); "
                    "also selects the cases that belong to it")
    ap.add_argument("--n", type=int, help="size n for the selected families (10n is run too)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    ap.add_argument("--save", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds per measurement (default 30: fifteen times the 2 s target)")
    ap.add_argument("--memory-limit", type=int, default=3072, metavar="MB",
                    help="address-space cap for every child, so a memory bomb fails alone (default 3072)")
    ap.add_argument("--no-inspect", action="store_true", help="skip the whole-process measurement")
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    ap.add_argument("--no-cases", action="store_true", help="skip the fixed cases")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile each selected family at n (or --n) and print the hot functions per stage")
    ap.add_argument("--list", action="store_true", help="list the families and cases")
    args = ap.parse_args(argv)

    if args.list:
        for f in hostile.FAMILIES:
            print(f"{f.name:<24} n={f.n:<7} {f.unit:<10} {f.what}")
        for c in hostile.CASES:
            print(f"case {c.name:<19} {c.what} (family {c.family})")
        return 0
    families = hostile.FAMILIES
    cases = [] if args.quick or args.no_cases else hostile.CASES
    if args.family:
        unknown = [n for n in args.family if n not in hostile.BY_NAME]
        if unknown:
            ap.error(f"unknown family {', '.join(unknown)} (see --list)")
        families = [hostile.BY_NAME[n] for n in args.family]
        cases = [c for c in cases if c.family in args.family]
    if args.quick:
        args.timeout = min(args.timeout, 10.0)

    _warm_up()
    if args.profile:
        for fam in families:
            profile(fam, args.n or (fam.quick_n if args.quick else fam.n), args)
        return 0

    load = os.getloadavg()
    started = time.perf_counter()
    fam_results = []
    for fam in families:
        n = args.n or (fam.quick_n if args.quick else fam.n)
        fam_results.append(measure_family(fam, n, args))
        if not args.json:
            print(f"  measured {fam.name}", file=sys.stderr, flush=True)
    case_results = []
    for case in cases:
        case_results.append(measure_case(case, args))
        if not args.json:
            print(f"  measured case {case.name}", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    data = as_json(fam_results, case_results)
    data["load_average_at_start"] = load
    data["seconds"] = round(elapsed, 1)
    if args.save:
        pathlib.Path(args.save).write_text(json.dumps(data, indent=1))
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        print(f"\nHostile mail: {len(fam_results)} families at n and 10n, {len(case_results)} fixed cases; "
              f"load average at start {load[0]:.2f} ({os.cpu_count()} CPUs); timeout {args.timeout:.0f}s")
        print("t = in-process seconds of our stages (parse .. ingest), fastest of the rounds; ratio = the "
              "fastest-growing stage's t(10n)/t(n) (linear ~10, flagged >= 20);\npeak MB = largest traced "
              "peak of one of our stages at 10n (tracemalloc);\ninspect s and RSS MB = `mailgate inspect --json` "
              "at 10n; "
              "ev KB = largest event JSON.\n")
        print_families(fam_results, args)
        if case_results:
            print(f"\nFixed cases, whole process (targets: {time_target(0):.0f} s + 0.1 s/MB, "
                  f"{memory_target(0):.0f} MB + 4x size)\n")
            print_cases(case_results, args)
        print_failures(fam_results, case_results, args)
        print(f"\n(bench ran {elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
