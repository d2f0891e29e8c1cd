"""limit-count: at most ``count`` requests per ``time_window`` seconds per key (APISIX
``limit-count``, priority 1002, access phase).

Windows: ``fixed`` (the counter starts with the first request and lives ``time_window``
seconds) or ``sliding`` (the previous window's count, weighted by how much of it still
overlaps, is added to the current one). The key is a variable (``key_type: var``, default
``remote_addr``), a ``$a $b`` combination or a constant; an empty value falls back to the
client address. Each route counts on its own (route id + a digest of the conf, so editing
the conf starts over) unless ``group`` shares one counter between every route of that
group. ``rules`` (instead of count/time_window) apply several limits, each keyed by a
template; a rule whose key resolves no variable does not apply.

Policies: ``local`` counts in the node's shared dict ``plugin-limit-count`` (every worker
of the node, one counter: :mod:`gateway.core.shdict`); ``redis`` / ``redis-cluster``
count in Redis with one atomic script per request (those confs are BLOCKING: their chain
runs on a parked greenlet and the Redis call waits cooperatively). A backend failure
answers 500 ``{"error_msg":"failed to limit count"}`` unless ``allow_degradation``.

Responses carry ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset``
(``show_limit_quota_header``; with rules, ``X-<prefix>-RateLimit-*`` where the prefix is
the rule's ``header_prefix`` or its 1-based index; the three names come from the plugin
metadata's ``limit_header``, ``remaining_header``, ``reset_header`` when set). Over the limit: ``rejected_code`` (503)
with ``{"error_msg": rejected_msg}`` when a message is set.
"""

from __future__ import annotations

import copy
import json
import math
import time
import zlib
from typing import Any

from gateway.core import shdict
from gateway.core.log import every, redact_conf
from gateway.core.log import log as _log
from gateway.worker.limits import (
    compile_key,
    compile_resolver,
    fill_policy_defaults,
    number,
    policy_schema,
    remote_addr,
    scope,
)

_crc32 = zlib.crc32

NAME = "limit-count"
PRIORITY = 1002
VERSION = 0.5
BLOCKING = True


def blocking(conf: dict[str, Any]) -> bool:
    return conf.get("policy", "local") != "local"


_COUNT = {"oneOf": [{"type": "integer", "exclusiveMinimum": 0}, {"type": "string"}]}
_SENTINEL = {
    "properties": {
        "redis_sentinels": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "properties": {"host": {"type": "string", "minLength": 2},
                           "port": {"type": "integer", "minimum": 1, "maximum": 65535}},
            "required": ["host", "port"], "additionalProperties": False}},
        "redis_master_name": {"type": "string", "minLength": 1},
        "redis_role": {"type": "string", "enum": ["master", "slave"], "default": "master"},
        "redis_connect_timeout": {"type": "integer", "minimum": 1, "default": 1000},
        "redis_read_timeout": {"type": "integer", "minimum": 1, "default": 1000},
        "redis_keepalive_timeout": {"type": "integer", "minimum": 1, "default": 60000},
        "redis_database": {"type": "integer", "minimum": 0, "default": 0},
        "redis_username": {"type": "string", "minLength": 1},
        "redis_password": {"type": "string", "minLength": 0},
        "sentinel_username": {"type": "string", "minLength": 1},
        "sentinel_password": {"type": "string", "minLength": 0},
    },
    "required": ["redis_sentinels", "redis_master_name"],
}

_PROPERTIES: dict[str, Any] = {
    "count": _COUNT,
    "time_window": _COUNT,
    "window_type": {"type": "string", "enum": ["fixed", "sliding"], "default": "fixed"},
    "rules": {"type": "array", "items": {
        "type": "object",
        "properties": {"count": _COUNT, "time_window": _COUNT, "key": {"type": "string"},
                       "header_prefix": {"type": "string",
                                         "description": "prefix for rate limit headers"}},
        "required": ["count", "time_window", "key"]}},
    "group": {"type": "string"},
    "key": {"type": "string", "default": "remote_addr"},
    "key_type": {"type": "string", "enum": ["var", "var_combination", "constant"],
                 "default": "var"},
    "rejected_code": {"type": "integer", "minimum": 200, "maximum": 599, "default": 503},
    "rejected_msg": {"type": "string", "minLength": 1},
    "policy": {"type": "string", "enum": ["local", "redis", "redis-cluster", "redis-sentinel"],
               "default": "local"},
    "allow_degradation": {"type": "boolean", "default": False},
    "show_limit_quota_header": {"type": "boolean", "default": True},
    "sync_interval": {"type": "number", "default": -1},
}
_POLICIES = policy_schema()
_POLICIES["else"]["else"] = {"if": {"properties": {"policy": {"enum": ["redis-sentinel"]}},
                                    "required": ["policy"]},
                             "then": _SENTINEL}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": _PROPERTIES,
    "oneOf": [{"required": ["count", "time_window"]}, {"required": ["rules"]}],
    **_POLICIES,
}
METADATA_SCHEMA = {
    "type": "object",
    "properties": {
        "limit_header": {"type": "string", "default": "X-RateLimit-Limit"},
        "remaining_header": {"type": "string", "default": "X-RateLimit-Remaining"},
        "reset_header": {"type": "string", "default": "X-RateLimit-Reset"},
    },
}
ENCRYPT_FIELDS = ("redis_password", "sentinel_password")

#: the first conf seen per group in this worker, with when it was seen (APISIX's
#: group_conf_lru: a group's conf can change once the entry is older than its 5 min TTL)
_groups: dict[str, tuple[dict[str, Any], float]] = {}
GROUP_CONF_TTL = 300.0
_GROUP_FIELDS = tuple(_PROPERTIES) + tuple(
    {k for part in (_POLICIES["then"], _POLICIES["else"]["then"], _SENTINEL)
     for k in part["properties"]})


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    if schema_type == "metadata":
        return None
    fill_policy_defaults(conf)
    if conf.get("rules") is not None and ("count" in conf or "time_window" in conf):
        return "count/time_window and rules cannot be specified at the same time"
    if conf.get("group") is not None and conf.get("rules") is not None:
        return "group and rules cannot be specified at the same time"
    group = conf.get("group")
    if group is not None:
        seen = _groups.get(group)
        now = time.monotonic()
        if seen is None or now - seen[1] > GROUP_CONF_TTL:
            seen = _groups[group] = (copy.deepcopy(conf), now)
        prev = seen[0]
        for field in _GROUP_FIELDS:
            if prev.get(field) != conf.get(field):
                _log.error("previous limit-count group %s conf: %s", group,
                           json.dumps(redact_conf(prev)))
                _log.error("current limit-count group %s conf: %s", group,
                           json.dumps(redact_conf(conf)))
                return "group conf mismatched"
    if conf.get("policy") in ("redis", "redis-cluster", "redis-sentinel"):
        interval = conf.get("sync_interval", -1)
        if interval != -1:
            if interval < 0.1:
                return "sync_interval should not be smaller than 0.1"
            window = conf.get("time_window")
            if isinstance(window, int) and interval >= window:
                return "sync_interval should be smaller than time_window"
    if conf.get("policy") == "redis-sentinel":
        return "policy redis-sentinel is not supported yet"
    seen = set()
    for rule in conf.get("rules") or ():
        if rule["key"] in seen:
            return "duplicate key '%s' in rules" % rule["key"]
        seen.add(rule["key"])
    return None


# --------------------------------------------------------------------------- backends
_REDIS_PREFIX = "plugin-limit-count:v1:"
#: fixed window: start the counter with its TTL, or add to it; (count, ttl in ms)
_FIXED_LUA = """
local left = redis.call('pttl', KEYS[1])
if left < 0 then
    redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[1])
    return {tonumber(ARGV[2]), tonumber(ARGV[1]) * 1000}
end
return {redis.call('incrby', KEYS[1], ARGV[2]), left}
"""
#: sliding window: decide and add in one step; (accepted 0/1, current count, previous)
_SLIDING_LUA = """
local limit = tonumber(ARGV[1])
local cur = tonumber(redis.call('get', KEYS[1]) or '0')
local prev = tonumber(redis.call('get', KEYS[2]) or '0')
if prev > limit then prev = limit end
local estimate = prev / tonumber(ARGV[2]) * tonumber(ARGV[3]) + cur
if cur >= limit or estimate >= limit then
    return {0, cur, prev}
end
local now = redis.call('incrby', KEYS[1], ARGV[4])
redis.call('expire', KEYS[1], ARGV[5])
return {1, now, prev}
"""


class _Rejected(Exception):
    pass


def _fixed_local(dict_: Any, key: str, limit: int, window: int) -> tuple[int, float]:
    """(remaining, reset) or raises _Rejected(reset)."""
    count, left = dict_.incr(key, 1, 0, window)
    if count > limit:
        raise _Rejected(left)
    return limit - int(count), left


def _sliding(cur: float, prev: float, limit: int, window: int,
             remaining_time: float) -> tuple[int, float]:
    rate = prev / window
    remaining = limit - cur - rate * remaining_time
    return int(math.floor(remaining)), remaining_time


def _sliding_reject(cur: float, prev: float, limit: int, window: int,
                    remaining_time: float) -> float:
    rate = prev / window
    if cur >= limit or rate == 0:
        return remaining_time
    return max(0.0, remaining_time - (limit - cur) / rate)


def _sliding_local(dict_: Any, key: str, limit: int, window: int) -> tuple[int, float]:
    now = time.time()
    wid = int(now // window)
    remaining_time = window - now % window
    prev = dict_.get("%s.%d.counter" % (key, wid - 1), 0)
    prev = min(prev, limit)

    def step(cur: float | None, _now: float) -> tuple[float | None, Any]:
        cur = cur or 0.0
        if cur >= limit or prev / window * remaining_time + cur >= limit:
            return None, (False, cur)
        return cur + 1, (True, cur + 1)
    ok, cur = dict_.update("%s.%d.counter" % (key, wid), step, window * 2)
    if not ok:
        raise _Rejected(_sliding_reject(cur, prev, limit, window, remaining_time))
    return _sliding(cur, prev, limit, window, remaining_time)


class _Redis:
    """The ``redis`` / ``redis-cluster`` counters (scripts registered per client)."""

    __slots__ = ("cluster", "conf", "scripts")

    def __init__(self, conf: dict[str, Any]):
        self.conf = conf
        self.cluster = conf.get("policy") == "redis-cluster"
        self.scripts: dict[int, tuple[Any, Any]] = {}

    def _client(self) -> tuple[Any, Any, Any]:
        from gateway.worker import redis_client
        cli = redis_client.cluster_client(self.conf) if self.cluster \
            else redis_client.client(self.conf)
        scripts = self.scripts.get(id(cli))
        if scripts is None:
            scripts = self.scripts[id(cli)] = (cli.register_script(_FIXED_LUA),
                                               cli.register_script(_SLIDING_LUA))
        return cli, scripts[0], scripts[1]

    def fixed(self, key: str, limit: int, window: int) -> tuple[int, float]:
        _cli, fixed, _sliding_script = self._client()
        count, left_ms = fixed(keys=[_REDIS_PREFIX + key], args=[window, 1])
        left = int(left_ms) / 1000.0
        remaining = limit - int(count)
        if remaining < 0:
            raise _Rejected(left)
        return remaining, left

    def sliding(self, key: str, limit: int, window: int) -> tuple[int, float]:
        _cli, _fixed_script, sliding = self._client()
        now = time.time()
        wid = int(now // window)
        remaining_time = window - now % window
        base = _REDIS_PREFIX + key
        if self.cluster:   # both windows of a key on one slot
            base = "{%s}" % base
        accepted, cur, prev = sliding(
            keys=["%s.%d.counter" % (base, wid), "%s.%d.counter" % (base, wid - 1)],
            args=[limit, window, remaining_time, 1, window * 2])
        if not accepted:
            raise _Rejected(_sliding_reject(int(cur), int(prev), limit, window,
                                            remaining_time))
        return _sliding(int(cur), int(prev), limit, window, remaining_time)


# --------------------------------------------------------------------------- prepare
class _Rule:
    __slots__ = ("by_addr", "count", "header_block", "header_names", "headers", "key",
                 "key_template", "window")

    def __init__(self, count: Any, window: Any, key: Any, key_template: Any,
                 headers: tuple[str, str, str]):
        self.count = count if isinstance(count, int) else compile_resolver(count)
        self.window = window if isinstance(window, int) else compile_resolver(window)
        self.key = key                   # fn(ctx) -> key value (single-limit confs)
        self.key_template = key_template  # fn(vars) -> (key, n resolved) (rules)
        #: keyed by the client address (the default): its bytes make the key directly
        self.by_addr = key is remote_addr
        self.headers = headers
        #: the three quota headers as one format (limit, remaining: int; reset: bytes) and
        #: their lower-case names, for PluginCtx.set_response_block; None when a name from
        #: the metadata is not ASCII (the per-header path handles it)
        self.header_block = self.header_names = None
        if all(name.isascii() for name in headers):
            self.header_block = ("%s: %%d\r\n%s: %%d\r\n%s: %%s\r\n" % headers).encode()
            self.header_names = frozenset(name.lower().encode() for name in headers)


class _Limit:
    __slots__ = (
        "degrade",
        "fixed",
        "group_prefix",
        "prefixes",
        "incoming",
        "multi",
        "policy",
        "rejected_body",
        "rejected_code",
        "rules",
        "show_headers",
        "version",
    )

    def __init__(self, conf: dict[str, Any], metadata: dict[str, Any] | None = None):
        meta = metadata or {}
        # header names: the plugin metadata's (limit_header, remaining_header, reset_header)
        names = (meta.get("limit_header") or "X-RateLimit-Limit",
                 meta.get("remaining_header") or "X-RateLimit-Remaining",
                 meta.get("reset_header") or "X-RateLimit-Reset")
        if conf.get("rules") is not None:
            self.multi = True
            self.rules = tuple(
                _Rule(r["count"], r["time_window"], None, compile_resolver(r["key"]),
                      tuple(n.replace("RateLimit-", "%s-RateLimit-"
                                      % r.get("header_prefix", i + 1), 1) for n in names))
                for i, r in enumerate(conf["rules"]))
        else:
            self.multi = False
            self.rules = (_Rule(conf["count"], conf["time_window"],
                                compile_key(conf.get("key", "remote_addr"),
                                            conf.get("key_type", "var")), None, names),)
        group = conf.get("group")
        self.group_prefix = group + ":" if group is not None else None
        #: route id -> the key prefix as bytes (the fixed local path; routes sharing this
        #: prepared conf count apart)
        self.prefixes: dict[Any, bytes] = {}
        digest = json.dumps({k: v for k, v in conf.items() if k != "_meta"},
                            sort_keys=True, separators=(",", ":"))
        self.version = ":%08x:" % zlib.crc32(digest.encode())
        self.policy = conf.get("policy", "local")
        sliding = conf.get("window_type") == "sliding"
        #: the shared dict of a single fixed-window local limit with a constant count and
        #: window (the common conf): access() then counts in it directly
        self.fixed = None
        if self.policy == "local":
            dict_ = shdict.get("plugin-limit-count")
            fn = _sliding_local if sliding else _fixed_local
            self.incoming = lambda key, limit, window: fn(dict_, key, limit, window)
            rule = self.rules[0]
            if not sliding and not self.multi and isinstance(rule.count, int) \
                    and isinstance(rule.window, int):
                self.fixed = dict_
        else:
            backend = _Redis(conf)
            self.incoming = backend.sliding if sliding else backend.fixed
        self.rejected_code = conf.get("rejected_code", 503)
        msg = conf.get("rejected_msg")
        self.rejected_body = {"error_msg": msg} if msg is not None else None
        self.degrade = conf.get("allow_degradation", False)
        self.show_headers = conf.get("show_limit_quota_header", True)


def prepare(conf: dict[str, Any], metadata: dict[str, Any]) -> _Limit:
    return _Limit(conf, metadata)


def _resolve_number(value: Any, ctx: Any) -> int:
    if isinstance(value, int):
        return value
    text, _n = value(ctx.vars)
    try:
        number_ = float(text)
    except ValueError:
        raise ValueError("resolved value is not a number") from None
    if number_ <= 0 or not number_.is_integer():
        raise ValueError("resolved value must be a positive integer, got: %s" % text)
    return int(number_)


def _fail(lim: _Limit, why: Any) -> Any:
    if every("limit-count failure %x %s" % (id(lim), why), 1.0):
        _log.error("failed to limit count: %s", why)
    if lim.degrade:
        return None
    return 500, {"error_msg": "failed to limit count"}


def _fixed_prefix(lim: _Limit, ctx: Any) -> bytes:
    """The key prefix of the fixed local path as bytes, cached per route id (a prepared
    conf is either a global rule's, scoped "global" on every route, or a route's own)."""
    group = lim.group_prefix
    prefix = (group if group is not None else scope(ctx, lim) + lim.version).encode(
        "utf-8", "surrogatepass")
    if len(lim.prefixes) < 4096:
        lim.prefixes[ctx.route_id] = prefix
    return prefix


def _fixed_access(lim: _Limit, ctx: Any, dict_: Any) -> Any:
    """One fixed-window local rule with a constant count (the common conf): the counter
    key is built as bytes and counted with one shared-dict call; the quota headers go out
    as one pre-formatted block."""
    rule = lim.rules[0]
    count = rule.count
    prefix = lim.prefixes.get(ctx.route_id)
    if prefix is None:
        prefix = _fixed_prefix(lim, ctx)
    if rule.by_addr:
        kb = prefix + ctx.client.remote
    else:
        kb = prefix + rule.key(ctx).encode("utf-8", "surrogatepass")
    if len(kb) > shdict.KEY_MAX:
        kb = shdict.key_bytes(kb)
    try:
        value, reset = dict_.incr_raw(kb, _crc32(kb), 1, 0, rule.window)
    except Exception as e:  # noqa: BLE001 - as the general path
        return _fail(lim, e)
    remaining = count - int(value)
    if lim.show_headers:
        if remaining < 0:
            remaining = 0
        reset = math.floor(reset * 100) / 100
        block = rule.header_block
        if block is not None:
            # (%.14g: what number() prints, 60 for 60.0)
            ctx.set_response_block(rule.header_names, block % (count, remaining,
                                                                 b"%.14g" % reset))
        else:
            h = rule.headers
            ctx.set_response_headers(((h[0], count), (h[1], remaining), (h[2], number(reset))))
    if value > count:
        return lim.rejected_code, lim.rejected_body
    return None


def access(lim: _Limit, ctx: Any) -> Any:
    dict_ = lim.fixed
    if dict_ is not None:
        return _fixed_access(lim, ctx, dict_)
    prefix = lim.group_prefix
    if prefix is None:
        prefix = scope(ctx, lim) + lim.version
    applied = 0
    for rule in lim.rules:
        if lim.multi:
            key, n = rule.key_template(ctx.vars)
            if n == 0:
                continue        # the rule's variables are absent: it does not apply
            applied += 1
        else:
            key = rule.key(ctx)
        try:
            count = _resolve_number(rule.count, ctx)
            window = _resolve_number(rule.window, ctx)
        except ValueError as e:
            if every("limit-count rules %x" % id(lim), 1.0):
                _log.error("failed to get rate limit rules: %s", e)
            return None if lim.degrade else 500
        try:
            remaining, reset = lim.incoming(prefix + key, count, window)
        except _Rejected as e:
            if lim.show_headers:
                h = rule.headers
                ctx.set_response_header(h[0], count)
                ctx.set_response_header(h[1], 0)
                ctx.set_response_header(h[2], number(math.floor(e.args[0] * 100) / 100))
            return lim.rejected_code, lim.rejected_body
        except Exception as e:  # noqa: BLE001 - the backend failed (Redis down...)
            done = _fail(lim, e)
            if done is not None:
                return done
            continue
        if lim.show_headers:
            h = rule.headers
            ctx.set_response_header(h[0], count)
            ctx.set_response_header(h[1], remaining)
            ctx.set_response_header(h[2], number(math.floor(reset * 100) / 100))
    if lim.multi and not applied:
        if every("limit-count no rules %x" % id(lim), 1.0):
            _log.error("failed to get rate limit rules: no rule applies to the request")
        return None if lim.degrade else 500
    return None
