"""traffic-split: send part of a route's traffic to other upstreams (APISIX
``traffic-split``, priority 966, access phase): canary releases, blue/green, A/B by header.

The first rule whose ``match`` passes (any of its ``vars`` expressions; a rule without
``match`` always passes) picks one of its ``weighted_upstreams`` by weighted round robin
(lua-resty-balancer's interleaved algorithm: per worker, starting at a random entry, each
entry chosen ``weight`` times per cycle). An entry names an ``upstream_id``, carries an
inline ``upstream``, or has only a ``weight``: that share stays on the route's own
upstream. No rule passing leaves the route's upstream in place.

The chosen upstream replaces the route's for this request through ``ctx.set_upstream``
(the runner picks the node from it, retries within it). ``upstream_id`` is looked up in
the worker's current table per request (a dict lookup; an unknown id answers 500 as
APISIX does); an inline upstream is compiled once per worker, on first use, from the
fields APISIX keeps (type, hash_on, key, pass_host, upstream_host, nodes, timeout, scheme,
name).
"""

from __future__ import annotations

import json
import math
import random
import zlib
from typing import Any

from gateway.core.log import log as _log
from gateway.core.schemas import UPSTREAM
from gateway.core.vars import VarsError, compile_vars

NAME = "traffic-split"
PRIORITY = 966
VERSION = 0.1

_ID = {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 64,
                  "pattern": r"^[a-zA-Z0-9-_.]+$"},
                 {"type": "integer", "minimum": 1}]}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "rules": {"type": "array", "items": {
            "type": "object",
            "properties": {
                "match": {"type": "array", "items": {
                    "type": "object", "properties": {"vars": {"type": "array"}}}},
                "weighted_upstreams": {
                    "type": "array",
                    "items": {"type": "object", "properties": {
                        "upstream_id": _ID,
                        "upstream": UPSTREAM,
                        "weight": {"description": "used to split traffic between different"
                                                  "upstreams for plugin configuration",
                                   "type": "integer", "default": 1, "minimum": 0}}},
                    "default": [{"weight": 1}],
                    "minItems": 1,
                    "maxItems": 20,
                },
            },
        }},
    },
}

#: the fields of an inline upstream APISIX passes on (apisix/plugins/traffic-split.lua)
_KEPT = ("name", "type", "hash_on", "pass_host", "upstream_host", "key", "nodes",
         "timeout", "scheme")


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    for rule in conf.get("rules") or ():
        for m in rule.get("match") or ():
            try:
                compile_vars(m.get("vars") or [])
            except VarsError as e:
                return "failed to validate the 'vars' expression: %s" % e
    return None


class _Choice:
    """One entry of weighted_upstreams: the route's own upstream (``kind`` 0), an
    upstream id (1) or an inline upstream (2, compiled on first use)."""

    __slots__ = ("compiled", "conf", "key", "kind", "upstream_id")

    def __init__(self, entry: dict[str, Any], key: str):
        self.upstream_id = str(entry["upstream_id"]) \
            if entry.get("upstream_id") is not None else None
        self.conf = {k: entry["upstream"][k] for k in _KEPT if k in entry["upstream"]} \
            if entry.get("upstream") is not None and self.upstream_id is None else None
        self.kind = 1 if self.upstream_id is not None else 2 if self.conf is not None else 0
        self.key = key
        self.compiled: Any = None


class _RoundRobin:
    """lua-resty-balancer's roundrobin over the entries (weight 0 never chosen)."""

    __slots__ = ("cw", "gcd", "items", "last", "max", "only", "weights")

    def __init__(self, items: list[Any], weights: list[int]):
        self.items = items
        self.weights = weights
        positive = [w for w in weights if w > 0]
        self.only = items[0] if len(items) == 1 else None
        self.max = max(positive) if positive else 0
        self.gcd = math.gcd(*positive) if positive else 1
        self.cw = self.max
        self.last = random.randrange(len(items)) - 1 if items else -1

    def find(self) -> Any:
        if self.only is not None:
            return self.only
        if self.max == 0:
            return None
        weights, n = self.weights, len(self.items)
        last, cw = self.last, self.cw
        while True:
            last += 1
            if last >= n:
                last = -1
                cw -= self.gcd
                if cw <= 0:
                    cw = self.max
                continue
            if weights[last] >= cw:
                self.last, self.cw = last, cw
                return self.items[last]


class _Rule:
    __slots__ = ("ids", "match", "rr")

    def __init__(self, rule: dict[str, Any], tag: str):
        matches = [compile_vars(m.get("vars") or []) for m in rule.get("match") or ()]
        self.match = matches if rule.get("match") is not None else None
        entries = rule.get("weighted_upstreams") or [{"weight": 1}]
        choices = [_Choice(e, "%s#%d" % (tag, i)) for i, e in enumerate(entries, 1)]
        self.rr = _RoundRobin(choices, [int(e.get("weight", 1)) for e in entries])
        self.ids = tuple(c.upstream_id for c in choices if c.upstream_id is not None)


def prepare(conf: dict[str, Any]) -> tuple[_Rule, ...]:
    digest = zlib.crc32(json.dumps(conf, sort_keys=True).encode())
    tag = "/apisix/plugins/traffic-split/%08x" % digest
    return tuple(_Rule(r, "%s/%d" % (tag, i)) for i, r in enumerate(conf.get("rules") or ()))


def _compile(choice: _Choice, ctx: Any) -> Any:
    """The inline upstream of ``choice`` for this worker (None, logged, when invalid)."""
    if choice.compiled is None:
        from gateway.worker.table import make_upstream
        try:
            choice.compiled = make_upstream(choice.key, choice.conf, ctx.client.server.conf)
        except Exception as e:  # noqa: BLE001 - a bad upstream must not fail requests
            _log.error("traffic-split: failed to build the upstream %s: %s", choice.key, e)
            choice.compiled = False
    return choice.compiled or None


def access(rules: tuple[_Rule, ...], ctx: Any) -> Any:
    if not rules:
        return None
    table = None
    picked: _Rule | None = None
    for rule in rules:
        if rule.ids:
            table = ctx.client.server.table
            for upstream_id in rule.ids:
                if upstream_id not in table.upstreams:
                    return 500, "failed to fetch upstream info by upstream id: %s" % upstream_id
        if rule.match is None:
            picked = rule
            break
        v = ctx.vars
        if any(m(v) for m in rule.match):
            picked = rule
            break
    if picked is None:
        return None
    choice = picked.rr.find()
    if choice is None or choice.kind == 0:
        return None
    if choice.kind == 1:
        if table is None:
            table = ctx.client.server.table
        ctx.set_upstream(table.upstreams[choice.upstream_id])
        return None
    upstream = _compile(choice, ctx)
    if upstream is None:
        return 500
    ctx.set_upstream(upstream)
    return None
