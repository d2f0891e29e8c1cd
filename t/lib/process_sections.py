"""Sections that act on the gateway's processes: `signal`, `kill_worker`, `load`,
`inflight_request` (semantics in runner.py's docstring).

The point of these tests is the process model (nginx's signal meanings, respawn, graceful
drains), so every action is followed by *observing* its effect in the process table: the
master's live children before and after, the pid file, `.oldbin`. Load and in-flight requests
run in threads around the action and are judged afterwards: zero failures under HUP, the
slow response completed under QUIT.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from t.lib.gateway_proc import alive, children, read_pid, wait_until
from t.lib.http_client import HttpError, Response, build_request, exchange, parse_request_text
from t.lib.registry import Background, BlockFailure, Phase, declare, register

SIGNALS = ("HUP", "QUIT", "TERM", "INT", "USR1", "USR2", "WINCH", "TTIN", "TTOU", "KILL")
LOAD_THREADS = 4
LOAD_AFTER = 50          #: requests that must complete after the awaited effect


def _sig(name: str, known: tuple[str, ...] = SIGNALS) -> signal.Signals:
    name = name.strip().upper().removeprefix("SIG")
    if name not in known:
        raise BlockFailure(f"unknown signal {name!r} (one of {', '.join(known)})")
    return signal.Signals[f"SIG{name}"]


def effect_timeout(run: Any) -> float:
    """Drains can take a while (a slow in-flight response); never less than 10 s."""
    return max(run.timeout, 10.0)


@register("signal", Phase.ACTION, needs_gateway=True)
def do_signal(run: Any, value: object) -> None:
    """Send each listed signal to the master, in order, awaiting each one's effect."""
    for name in str(value).split():
        _one_signal(run, _sig(name))


def _one_signal(run: Any, sig: signal.Signals) -> None:
    gw = run.state.gateway
    master = gw.master_pid()
    if master is None:
        raise BlockFailure(f"{run.block.name} - signal {sig.name}: no master is running")
    before = gw.workers(master)
    n = len(before)
    os.kill(master, sig)
    name = sig.name[3:]
    if name == "HUP":
        def done() -> bool:
            now = children(master)
            return len(now) == n and not any(alive(p) for p in before)
        want = f"all {n} old workers {before} replaced by {n} new ones"
    elif name in ("TTIN", "TTOU", "WINCH"):
        target = n + 1 if name == "TTIN" else max(n - 1, 0) if name == "TTOU" else 0
        def done() -> bool:
            return len(children(master)) == target
        want = f"{target} workers"
    elif name in ("QUIT", "TERM", "INT", "KILL"):
        def done() -> bool:
            return not alive(master) and not gw.pid_path.exists()
        want = "the master exited and removed its pid file"
    elif name == "USR2":
        oldbin = gw.pid_path.with_name(gw.pid_path.name + ".oldbin")
        def done() -> bool:
            new = read_pid(gw.pid_path)
            return (new is not None and new != master and alive(new)
                    and read_pid(oldbin) == master)
        want = "a new master in gateway.pid and the old one in gateway.pid.oldbin"
    else:  # USR1: reopen logs, nothing visible to await
        return
    ok = wait_until(done, effect_timeout(run))
    if name in ("QUIT", "TERM", "INT", "KILL"):
        gw.started_config = None
    else:
        new_master = gw.master_pid()
        if new_master:
            gw.workers(new_master)
    if not ok:
        now = children(master) if alive(master) else "(master gone)"
        raise BlockFailure(f"{run.block.name} - signal {name}: effect not seen within "
                           f"{effect_timeout(run):g}s\n  expected: {want}\n  workers before: "
                           f"{before}\n  workers now: {now}\n  master alive: {alive(master)}"
                           f"\n  error.log tail:\n{_indent(gw.log_tail(15))}")


@register("kill_worker", Phase.ACTION, needs_gateway=True)
def do_kill_worker(run: Any, value: object) -> None:
    """Kill one worker with the given signal (default KILL) and await its replacement."""
    sig = _sig(str(value or "KILL"), tuple(s.name[3:] for s in signal.Signals
                                            if s.name.startswith("SIG")))
    gw = run.state.gateway
    master = gw.master_pid()
    before = gw.workers(master) if master else []
    if not before:
        raise BlockFailure(f"{run.block.name} - kill_worker: no worker to kill "
                           f"(master {master})")
    victim = before[0]
    os.kill(victim, sig)

    def done() -> bool:
        now = children(master)
        return not alive(victim) and victim not in now and len(now) == len(before)
    if not wait_until(done, effect_timeout(run)):
        raise BlockFailure(f"{run.block.name} - kill_worker {sig.name}: worker {victim} was "
                           f"not replaced within {effect_timeout(run):g}s\n  workers before: "
                           f"{before}\n  workers now: {children(master)}\n  error.log tail:\n"
                           f"{_indent(gw.log_tail(15))}")
    gw.workers(master)


def _indent(text: str) -> str:
    return "\n".join("    " + ln for ln in text.splitlines())


class _Load:
    """K threads, a new connection per request, counting every non-expected outcome."""

    def __init__(self, run: Any, text: str, expect: str):
        self.run, self.expect = run, expect
        self.raw = build_request(text)
        self.line = text.strip().splitlines()[0]
        self.total = self.failed = 0
        self.samples: list[str] = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.mark_total: int | None = None
        self.t0 = time.monotonic()
        self.threads = [threading.Thread(target=self.loop, daemon=True, name=f"load-{i}")
                        for i in range(LOAD_THREADS)]

    def loop(self) -> None:
        while not self.stop_flag.is_set():
            res = exchange(self.raw, 1, self.run.timeout)[0]
            bad = None
            if isinstance(res, HttpError):
                bad = str(res)
            elif str(res.status) != self.expect:
                bad = f"status {res.status}: {res.text[:120]!r}"
            with self.lock:
                self.total += 1
                if bad:
                    self.failed += 1
                    if len(self.samples) < 5:
                        self.samples.append(f"+{time.monotonic() - self.t0:.3f}s {bad}")

    def start(self) -> None:
        for t in self.threads:
            t.start()
        if not wait_until(lambda: self.total >= LOAD_THREADS, self.run.timeout):
            self.stop()
            raise BlockFailure(f"{self.run.block.name} - load {self.line}: no request "
                               f"completed within {self.run.timeout:g}s")

    def mark(self) -> None:
        with self.lock:
            self.mark_total = self.total

    def stop(self) -> None:
        self.stop_flag.set()
        for t in self.threads:
            t.join(self.run.timeout + 5)

    def finish(self) -> list[str]:
        if self.mark_total is None:
            self.mark()
        target = (self.mark_total or 0) + LOAD_AFTER
        wait_until(lambda: self.total >= target or self.failed > 0,
                   max(self.run.timeout, 30))
        self.stop()
        summary = f"load {self.line}: {self.total} requests, {self.failed} failed"
        print(f"{self.run.block.name} - {summary}")
        if self.failed:
            return [f"{self.run.block.name} - {summary} (expected status {self.expect})\n"
                    + "\n".join(f"  {s}" for s in self.samples)]
        if self.total < target:
            return [f"{self.run.block.name} - {summary}: only {self.total - self.mark_total} "
                    f"completed after the awaited effect (wanted {LOAD_AFTER})"]
        return []


@register("load", Phase.BACKGROUND, needs_gateway=True)
def start_load(run: Any, value: object) -> Background:
    """K=4 threads send this request over new connections until the action is done."""
    expect = str(run.block.get("load_expect", 200)).strip()
    load = _Load(run, str(value), expect)
    load.start()
    return Background("load", load.finish, load.mark)


@register("inflight_request", Phase.BACKGROUND, needs_gateway=True)
def start_inflight(run: Any, value: object) -> Background:
    """Send a (slow) request and await its arrival at the mock upstream before acting."""
    text = str(value)
    target = parse_request_text(text).target
    path = urlsplit(target).path
    mock = run.state.session.mock
    seen = mock.arrivals(path)
    result: list[Response | HttpError] = []
    limit = max(run.timeout, 30.0)
    thread = threading.Thread(target=lambda: result.extend(exchange(build_request(text), 1,
                                                                    limit)),
                              daemon=True, name="inflight")
    thread.start()
    if not mock.wait_for_arrival(path, seen, run.timeout):
        thread.join(limit + 1)
        got = result[0] if result else "(nothing yet)"
        raise BlockFailure(f"{run.block.name} - inflight_request {text.strip()}: it never "
                           f"reached the mock upstream at {path} within {run.timeout:g}s; "
                           f"client got: {got}")

    def finish() -> list[str]:
        thread.join(limit + 1)
        line = text.strip().splitlines()[0]
        if not result:
            return [f"{run.block.name} - inflight request {line}: no result (still running)"]
        res = result[0]
        want_code = str(run.block.get("inflight_error_code", 200)).strip()
        if isinstance(res, HttpError):
            if want_code == "0":
                return []
            return [f"{run.block.name} - inflight request {line}: no response\n"
                    f"  expected: {want_code}\n  got: {res}"]
        out = []
        if str(res.status) != want_code:
            out.append(f"{run.block.name} - inflight request {line}: status code mismatch\n"
                       f"  expected: {want_code}\n  got: {res.status}\n  body: {res.text!r}")
        want_body = run.block.get("inflight_response_body")
        if want_body is not None and res.text != str(want_body):
            out.append(f"{run.block.name} - inflight request {line}: body mismatch\n"
                       f"  expected: {str(want_body)!r}\n  got: {res.text!r}")
        return out

    return Background("inflight_request", finish)


declare("load_expect inflight_error_code inflight_response_body", Phase.PARAM)
