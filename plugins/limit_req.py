"""limit-req: a leaky bucket per key (APISIX ``limit-req``, priority 1001, access phase).

Requests drain at ``rate`` per second; up to ``burst`` more may queue: they are delayed until
their turn (``nodelay`` lets them through at once), and beyond that they are rejected with
``rejected_code`` (503) and ``{"error_msg": rejected_msg}`` when a message is set. The key is
a variable (``key_type: var``) or a ``$a $b`` combination; empty falls back to the client
address. Each route has its own buckets (route id + a digest of the conf).

Policies: ``local`` keeps one float per key in the node's shared dict ``plugin-limit-req``
(the time at which the bucket is empty again, so a request's update is one atomic step
for every worker of the node); ``redis`` / ``redis-cluster`` keep APISIX's ``excess`` /
``last`` hash and update it with one script. The delay is a ``gevent.sleep`` on the parked
greenlet the chain runs on (BLOCKING unless local with ``nodelay``), never on the loop.
"""

from __future__ import annotations

import json
import time
import zlib
from typing import Any

import gevent

from gateway.core import shdict
from gateway.core.log import every
from gateway.core.log import log as _log
from gateway.worker.limits import (
    compile_key,
    fill_policy_defaults,
    policy_schema,
    scope,
)

NAME = "limit-req"
PRIORITY = 1001
VERSION = 0.1
BLOCKING = True


def blocking(conf: dict[str, Any]) -> bool:
    return conf.get("policy", "local") != "local" or not conf.get("nodelay", False)


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "rate": {"type": "number", "exclusiveMinimum": 0},
        "burst": {"type": "number", "minimum": 0},
        "key": {"type": "string"},
        "key_type": {"type": "string", "enum": ["var", "var_combination"], "default": "var"},
        "policy": {"type": "string", "enum": ["redis", "redis-cluster", "local"],
                   "default": "local"},
        "rejected_code": {"type": "integer", "minimum": 200, "maximum": 599, "default": 503},
        "rejected_msg": {"type": "string", "minLength": 1},
        "nodelay": {"type": "boolean", "default": False},
        "allow_degradation": {"type": "boolean", "default": False},
    },
    "required": ["rate", "burst", "key"],
    **policy_schema(),
}
ENCRYPT_FIELDS = ("redis_password",)


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    fill_policy_defaults(conf)
    return None


#: the bucket in Redis: a hash {excess (requests x 1000), last (ms)}, decided and stored
#: in one step; {1, excess} admitted (stored), {0, excess} rejected (nothing stored)
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('hmget', KEYS[1], 'excess', 'last')
local excess = 0
if state[1] and state[2] then
    excess = tonumber(state[1]) - rate * math.abs(now - tonumber(state[2])) / 1000 + 1000
    if excess < 0 then excess = 0 end
    if excess > burst then return {0, tostring(excess)} end
end
redis.call('hset', KEYS[1], 'excess', excess, 'last', now)
redis.call('expire', KEYS[1], ARGV[4])
return {1, tostring(excess)}
"""


class _Rejected(Exception):
    pass


class _Bucket:
    __slots__ = (
        "body",
        "burst",
        "code",
        "conf",
        "degrade",
        "delay",
        "incoming",
        "key",
        "rate",
        "scripts",
        "version",
    )

    def __init__(self, conf: dict[str, Any]):
        self.rate = float(conf["rate"])
        self.burst = float(conf["burst"])
        self.key = compile_key(conf["key"], conf.get("key_type", "var"))
        digest = json.dumps({k: v for k, v in conf.items() if k != "_meta"},
                            sort_keys=True, separators=(",", ":"))
        self.version = ":%08x:" % zlib.crc32(digest.encode())
        self.delay = not conf.get("nodelay", False)
        self.code = conf.get("rejected_code", 503)
        msg = conf.get("rejected_msg")
        self.body = {"error_msg": msg} if msg is not None else None
        self.degrade = conf.get("allow_degradation", False)
        self.conf = conf
        self.scripts: dict[int, Any] = {}
        if conf.get("policy", "local") == "local":
            self.incoming = self._local
        else:
            self.incoming = self._redis

    def _local(self, key: str) -> float:
        """The delay of this request in seconds, or raises _Rejected."""
        rate, burst = self.rate, self.burst

        def step(empty_at: float | None, now: float) -> tuple[float | None, float]:
            if empty_at is None:
                excess = 0.0
            else:
                excess = (empty_at - now) * rate + 1
                if excess < 0:
                    excess = 0.0
                if excess > burst:
                    return None, -1.0
            return now + excess / rate, excess / rate
        delay = shdict.get("plugin-limit-req").update(key, step,
                                                      (burst + 1) / rate + 1)
        if delay < 0:
            raise _Rejected()
        return delay

    def _redis(self, key: str) -> float:
        from gateway.worker import redis_client
        conf = self.conf
        cli = redis_client.cluster_client(conf) if conf.get("policy") == "redis-cluster" \
            else redis_client.client(conf)
        script = self.scripts.get(id(cli))
        if script is None:
            script = self.scripts[id(cli)] = cli.register_script(_LUA)
        rate, burst = self.rate * 1000, self.burst * 1000
        ttl = int(burst / rate) + 2
        allowed, excess = script(keys=["limit_req:" + key],
                                 args=[rate, burst, time.time() * 1000, ttl])
        if not int(allowed):
            raise _Rejected()
        return float(excess) / rate


def prepare(conf: dict[str, Any]) -> _Bucket:
    return _Bucket(conf)


def access(bucket: _Bucket, ctx: Any) -> Any:
    key = scope(ctx, bucket) + bucket.version + bucket.key(ctx)
    try:
        delay = bucket.incoming(key)
    except _Rejected:
        return bucket.code, bucket.body
    except Exception as e:  # noqa: BLE001 - the backend failed (Redis down...)
        if every("limit-req failure %x %s" % (id(bucket), e), 1.0):
            _log.error("failed to limit req: %s", e)
        return None if bucket.degrade else 500
    if delay >= 0.001 and bucket.delay:
        _log.info("limit-req delays the request %.3f s, key %s", delay, key)
        gevent.sleep(delay)
    return None
