"""fault-injection: delay and/or abort requests, for chaos testing (APISIX
``fault-injection``, priority 11000, rewrite phase).

``abort``: answer ``http_status`` with ``body`` (``$var`` resolved) and ``headers``, for
``percentage`` % of the requests whose ``vars`` (a list of expressions, any one matching)
match. ``delay``: wait ``duration`` seconds first (same sampling). The delay sleeps on a
parked worker greenlet (BLOCKING when a delay is configured), never on the event loop.
"""

from __future__ import annotations

import random
from typing import Any

import gevent

from gateway.core.template import compile_template
from gateway.core.vars import VarsError, compile_vars

NAME = "fault-injection"
PRIORITY = 11000
VERSION = 0.1
#: the delay waits: its chain runs on a parked greenlet (abort alone runs inline)
BLOCKING = True


def blocking(conf: dict[str, Any]) -> bool:
    return bool(conf.get("delay"))

_VARS = {"type": "array", "maxItems": 20, "items": {"type": "array"}}
_PERCENTAGE = {"type": "integer", "minimum": 0, "maximum": 100}

SCHEMA = {
    "type": "object",
    "properties": {
        "abort": {
            "type": "object",
            "properties": {
                "http_status": {"type": "integer", "minimum": 200},
                "body": {"type": "string", "minLength": 0},
                "headers": {
                    "type": "object",
                    "minProperties": 1,
                    "patternProperties": {
                        "^[^:]+$": {"oneOf": [{"type": "string"}, {"type": "number"}]},
                    },
                },
                "percentage": _PERCENTAGE,
                "vars": _VARS,
            },
            "required": ["http_status"],
        },
        "delay": {
            "type": "object",
            "properties": {
                "duration": {"type": "number", "minimum": 0},
                "percentage": _PERCENTAGE,
                "vars": _VARS,
            },
            "required": ["duration"],
        },
    },
    "minProperties": 1,
}


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    for part in ("abort", "delay"):
        for expr in (conf.get(part) or {}).get("vars") or ():
            try:
                compile_vars(expr)
            except VarsError as e:
                return str(e)
    return None


class _Fault:
    __slots__ = ("percentage", "match", "status", "body", "headers", "duration")

    def __init__(self, conf: dict[str, Any]):
        self.percentage = conf.get("percentage")
        exprs = [compile_vars(e) for e in conf.get("vars") or ()]
        self.match = (lambda v: any(e(v) for e in exprs)) if exprs else None
        self.status = conf.get("http_status")
        body = conf.get("body")
        self.body = compile_template(body) if body is not None else None
        self.headers = [(name, compile_template(value) if isinstance(value, str) else value)
                        for name, value in (conf.get("headers") or {}).items()]
        self.duration = conf.get("duration")

    def hit(self, ctx: Any) -> bool:
        if self.match is not None and not self.match(ctx.vars):
            return False
        return self.percentage is None or random.randint(1, 100) <= self.percentage


def prepare(conf: dict[str, Any]) -> tuple[_Fault | None, _Fault | None]:
    return (_Fault(conf["delay"]) if conf.get("delay") else None,
            _Fault(conf["abort"]) if conf.get("abort") else None)


def rewrite(conf: tuple[_Fault | None, _Fault | None], ctx: Any) -> Any:
    delay, abort = conf
    # APISIX evaluates both vars before sleeping
    do_delay = delay is not None and delay.hit(ctx)
    do_abort = abort is not None and abort.hit(ctx)
    if do_delay:
        gevent.sleep(delay.duration)
    if do_abort:
        for name, value in abort.headers:
            ctx.set_response_header(name, value(ctx.vars) if callable(value) else value)
        return abort.status, abort.body(ctx.vars) if abort.body is not None else None
    return None
