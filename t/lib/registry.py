"""The section registry: what each `--- name` in a block means, and when it acts.

A block runs in fixed phases (see runner.py); every section a block may use is declared here
once, with its phase and whether it needs a running gateway. New kinds of sections (the Admin
API calls, stream requests...) slot in by registering a handler; a section nobody registered
fails the block loudly instead of being silently ignored.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from t.lib.http_client import Response


class Phase(enum.IntEnum):
    META = 0        #: ONLY/SKIP/LAST/FIRST: used at collection
    PARAM = 1       #: read by other handlers (more_headers, timeout...)
    CONFIG = 2      #: files written before the gateway is (re)started
    BACKGROUND = 3  #: started before actions, finished after requests (load, inflight)
    ACTION = 4      #: acts on the processes (signal, kill_worker)
    EXEC = 5        #: shell command
    REQUEST = 6     #: produces exchanges (request, pipelined_requests, raw_request...)
    ASSERT = 7      #: checks each exchange (error_code, response_body...)
    WAIT = 8        #: sleeps after requests (the only fixed sleep there is)
    LOGCHECK = 9    #: error-log checks


@dataclass
class SectionDef:
    name: str
    phase: Phase
    needs_gateway: bool = False
    handler: Callable[..., Any] | None = None
    #: for ASSERT handlers: which exchanges they look at ("http", "exec")
    applies_to: frozenset[str] = frozenset({"http"})
    doc: str = ""


REGISTRY: dict[str, SectionDef] = {}


def register(name: str, phase: Phase, needs_gateway: bool = False,
             applies_to: tuple[str, ...] = ("http",), doc: str = "") -> Callable:
    """Decorator (or plain call with `handler=None`) declaring a section."""
    def deco(fn: Callable | None) -> Callable | None:
        REGISTRY[name] = SectionDef(name, phase, needs_gateway, fn, frozenset(applies_to),
                                    doc or (fn.__doc__ or "" if fn else ""))
        return fn
    return deco


def declare(names: str, phase: Phase, needs_gateway: bool = False) -> None:
    """Sections without their own handler (read by others)."""
    for n in names.split():
        register(n, phase, needs_gateway)(None)


class BlockFailure(AssertionError):
    """A block failed; the message is the whole Test::Nginx-style report."""


@dataclass
class Exchange:
    """One request and its outcome, or one `exec` run: what assertions look at."""

    kind: str                              #: "http" or "exec"
    index: int                             #: position among the block's requests (0-based)
    count: int                             #: how many requests the block sends per repetition
    request: str                           #: readable form for reports
    response: Response | None = None
    error: str | None = None               #: why there is no response
    exit_code: int | None = None           #: exec only
    output: str = ""                       #: exec only: stdout + stderr

    @property
    def body(self) -> str | None:
        if self.kind == "exec":
            return self.output
        return self.response.text if self.response is not None else None

    @property
    def status(self) -> int | None:
        return self.response.status if self.response is not None else None

    def label(self) -> str:
        return f" (request {self.index + 1} of {self.count})" if self.count > 1 else ""


@dataclass
class Background:
    """Something running across the block's actions (load, an in-flight request)."""

    name: str
    finish: Callable[[], list[str]]        #: stop and return failure messages
    mark: Callable[[], None] = field(default=lambda: None)  #: the awaited effect happened


def parse_duration(value: object, default: float) -> float:
    """`1.5`, `500ms`, `2s`, `1m` -> seconds."""
    if value is None or value == "":
        return default
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"\s*([\d.]+)\s*(ms|s|m)?\s*", str(value))
    if not m:
        raise BlockFailure(f"bad duration {value!r}")
    n = float(m.group(1))
    return n / 1000 if m.group(2) == "ms" else n * 60 if m.group(2) == "m" else n


def indexed(value: object, ex: Exchange, section: str) -> object:
    """An assertion value for this exchange: arrays are per request, scalars apply to all."""
    if isinstance(value, list):
        if len(value) != ex.count:
            raise BlockFailure(f"--- {section} has {len(value)} values for {ex.count} "
                               f"request(s)")
        return value[ex.index]
    return value
