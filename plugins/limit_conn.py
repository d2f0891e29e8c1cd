"""limit-conn: concurrent requests per key (APISIX ``limit-conn``, priority 1003; counted in
the access phase, given back in the log phase).

Up to ``conn`` requests of a key run at once; the next ``burst`` ones are delayed
(``default_conn_delay`` seconds times how many ``conn``-sized groups are ahead of them);
beyond ``conn + burst`` they are rejected with ``rejected_code`` (503) and
``{"error_msg": rejected_msg}`` when a message is set. ``rules`` (with
``default_conn_delay``) apply several limits keyed by templates; a rule whose key resolves
no variable, or whose conn/burst variable is not a number, does not apply. ``conn`` and
``burst`` may be ``$var`` strings resolved per request.

Policies: ``local`` counts in the node's shared dict ``plugin-limit-conn`` (one counter per
key for every worker of the node); ``redis`` / ``redis-cluster`` keep APISIX's sorted set
of request ids per key (members expire after ``key_ttl`` seconds, so a node that dies does
not hold connections forever). The log phase runs for every request that was counted,
aborted ones included. Delays sleep on the parked greenlet the chain runs on.
"""

from __future__ import annotations

import json
import math
import time
import uuid
import zlib
from typing import Any

import gevent

from gateway.core import shdict
from gateway.core.log import every
from gateway.core.log import log as _log
from gateway.worker.limits import (
    compile_key,
    compile_resolver,
    fill_policy_defaults,
    policy_schema,
    scope,
)

NAME = "limit-conn"
PRIORITY = 1003
VERSION = 0.1
BLOCKING = True


def blocking(conf: dict[str, Any]) -> bool:
    if conf.get("policy", "local") != "local":
        return True
    bursts = [conf.get("burst")] + [r.get("burst") for r in conf.get("rules") or ()]
    return any(b != 0 for b in bursts if b is not None)


_CONN = {"oneOf": [{"type": "integer", "exclusiveMinimum": 0}, {"type": "string"}]}
_BURST = {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "conn": _CONN,
        "burst": _BURST,
        "default_conn_delay": {"type": "number", "exclusiveMinimum": 0},
        "only_use_default_delay": {"type": "boolean", "default": False},
        "key": {"type": "string"},
        "key_type": {"type": "string", "enum": ["var", "var_combination"], "default": "var"},
        "policy": {"type": "string", "enum": ["redis", "redis-cluster", "local"],
                   "default": "local"},
        "rejected_code": {"type": "integer", "minimum": 200, "maximum": 599, "default": 503},
        "rejected_msg": {"type": "string", "minLength": 1},
        "allow_degradation": {"type": "boolean", "default": False},
        "rules": {"type": "array", "items": {
            "type": "object",
            "properties": {"conn": _CONN, "burst": _BURST, "key": {"type": "string"}},
            "required": ["conn", "burst", "key"]}},
    },
    "oneOf": [{"required": ["conn", "burst", "default_conn_delay", "key"]},
              {"required": ["default_conn_delay", "rules"]}],
    **policy_schema(key_ttl=True),
}
ENCRYPT_FIELDS = ("redis_password",)


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    fill_policy_defaults(conf, key_ttl=True)
    return None


#: drop expired members, refuse at the limit, else add this request (score: its expiry)
_LUA = """
redis.call('zremrangebyscore', KEYS[1], 0, ARGV[3])
local count = redis.call('zcard', KEYS[1])
if count >= tonumber(ARGV[1]) then
    return {0, count}
end
redis.call('zadd', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[4])
redis.call('expire', KEYS[1], ARGV[2])
return {1, count + 1}
"""


class _Rejected(Exception):
    pass


def _resolve(value: Any, ctx: Any, allow_zero: bool) -> int:
    if isinstance(value, int):
        return value
    text, _n = value(ctx.vars)
    try:
        number = float(text)
    except ValueError:
        raise ValueError("resolved value is not a number: %s" % text) from None
    if number < 0 or (number == 0 and not allow_zero) or not number.is_integer():
        raise ValueError("resolved value must be a %s integer, got: %s"
                         % ("non-negative" if allow_zero else "positive", text))
    return int(number)


class _Rule:
    __slots__ = ("burst", "conn", "key", "template")

    def __init__(self, conn: Any, burst: Any, key: Any, template: Any):
        self.conn = conn if isinstance(conn, int) else compile_resolver(conn)
        self.burst = burst if isinstance(burst, int) else compile_resolver(burst)
        self.key = key
        self.template = template


class _Limit:
    __slots__ = (
        "body",
        "code",
        "conf",
        "degrade",
        "delay",
        "local",
        "multi",
        "only_default",
        "rules",
        "scripts",
        "ttl",
        "version",
    )

    def __init__(self, conf: dict[str, Any]):
        if conf.get("rules") is not None:
            self.multi = True
            self.rules = tuple(_Rule(r["conn"], r["burst"], None, compile_resolver(r["key"]))
                               for r in conf["rules"])
        else:
            self.multi = False
            self.rules = (_Rule(conf["conn"], conf["burst"],
                                compile_key(conf["key"], conf.get("key_type", "var")), None),)
        self.delay = float(conf["default_conn_delay"])
        self.only_default = conf.get("only_use_default_delay", False)
        digest = json.dumps({k: v for k, v in conf.items() if k != "_meta"},
                            sort_keys=True, separators=(",", ":"))
        self.version = ":%08x:" % zlib.crc32(digest.encode())
        self.code = conf.get("rejected_code", 503)
        msg = conf.get("rejected_msg")
        self.body = {"error_msg": msg} if msg is not None else None
        self.degrade = conf.get("allow_degradation", False)
        self.local = conf.get("policy", "local") == "local"
        self.conf = conf
        self.ttl = int(conf.get("key_ttl", 3600))
        self.scripts: dict[int, Any] = {}

    def _client(self) -> tuple[Any, Any]:
        from gateway.worker import redis_client
        conf = self.conf
        cli = redis_client.cluster_client(conf) if conf.get("policy") == "redis-cluster" \
            else redis_client.client(conf)
        script = self.scripts.get(id(cli))
        if script is None:
            script = self.scripts[id(cli)] = cli.register_script(_LUA)
        return cli, script

    def incoming(self, key: str, conn: int, burst: int) -> tuple[float, Any]:
        """(delay, token for leaving) or raises _Rejected."""
        if self.local:
            dict_ = shdict.get("plugin-limit-conn")
            count = dict_.incr(key, 1, 0)[0]
            if count > conn + burst:
                dict_.incr(key, -1, 0)
                raise _Rejected()
            token = key
        else:
            _cli, script = self._client()
            token = uuid.uuid4().hex
            allowed, count = script(keys=["limit_conn:" + key],
                                    args=[conn + burst, self.ttl, int(time.time()), token])
            if not int(allowed):
                raise _Rejected()
            token = (key, token)
        if count > conn:
            return self.delay * math.floor((count - 1) / conn), token
        return 0.0, token

    def leaving(self, token: Any) -> None:
        if self.local:
            shdict.get("plugin-limit-conn").incr(token, -1, 0)
        else:
            cli, _script = self._client()
            cli.zrem("limit_conn:" + token[0], token[1])


def prepare(conf: dict[str, Any]) -> _Limit:
    return _Limit(conf)


def _failed(lim: _Limit, why: Any) -> Any:
    if every("limit-conn failure %x %s" % (id(lim), why), 1.0):
        _log.error("failed to limit conn: %s", why)
    return None if lim.degrade else 500


def access(lim: _Limit, ctx: Any) -> Any:
    prefix = scope(ctx, lim) + lim.version
    rules = []
    for rule in lim.rules:
        try:
            conn = _resolve(rule.conn, ctx, False)
            burst = _resolve(rule.burst, ctx, True)
        except ValueError as e:
            if not lim.multi:
                if every("limit-conn rules %x" % id(lim), 1.0):
                    _log.error("failed to get limit conn rules: %s", e)
                return None if lim.degrade else 500
            continue
        if lim.multi:
            key, n = rule.template(ctx.vars)
            if n == 0:
                continue
        else:
            key = rule.key(ctx)
        rules.append((prefix + key, conn, burst))
    if not rules:
        if every("limit-conn rules %x" % id(lim), 1.0):
            _log.error("failed to get limit conn rules: no rule applies to the request")
        return None if lim.degrade else 500
    for key, conn, burst in rules:
        try:
            delay, token = lim.incoming(key, conn, burst)
        except _Rejected:
            return lim.code, lim.body
        except Exception as e:  # noqa: BLE001 - the backend failed (Redis down...)
            done = _failed(lim, e)
            if done is not None:
                return done
            continue
        held = ctx.data.get(NAME)
        if held is None:
            held = ctx.data[NAME] = []
        held.append((lim, token))
        if delay >= 0.001:
            _log.info("limit-conn delays the request %.3f s, key %s", delay, key)
            gevent.sleep(delay)
    return None


def log(lim: _Limit, ctx: Any) -> None:
    held = ctx.data.pop(NAME, None)
    if not held:
        return
    for owner, token in held:
        try:
            owner.leaving(token)
        except Exception as e:  # noqa: BLE001
            if every("limit-conn leaving %x" % id(owner), 1.0):
                _log.error("failed to record the connection leaving request: %s", e)
