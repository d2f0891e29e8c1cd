"""What limit-count, limit-req and limit-conn share: APISIX's Redis policy schemas, the
limit key (``key_type`` var / var_combination / constant, compiled once per conf), and the
header number format.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from gateway.core.ctxvars import getter

__all__ = [
    "REDIS_CLUSTER_SCHEMA",
    "REDIS_SCHEMA",
    "compile_key",
    "compile_resolver",
    "fill_policy_defaults",
    "number",
    "policy_schema",
    "remote_addr",
    "scope",
]

#: ``policy: redis`` settings (apisix/utils/redis-schema.lua)
REDIS_SCHEMA: dict[str, Any] = {
    "properties": {
        "redis_host": {"type": "string", "minLength": 2},
        "redis_port": {"type": "integer", "minimum": 1, "default": 6379},
        "redis_username": {"type": "string", "minLength": 1},
        "redis_password": {"type": "string", "minLength": 0},
        "redis_database": {"type": "integer", "minimum": 0, "default": 0},
        "redis_timeout": {"type": "integer", "minimum": 1, "default": 1000},
        "redis_ssl": {"type": "boolean", "default": False},
        "redis_ssl_verify": {"type": "boolean", "default": False},
        "redis_keepalive_timeout": {"type": "integer", "minimum": 1000, "default": 10000},
        "redis_keepalive_pool": {"type": "integer", "minimum": 1, "default": 100},
    },
    "required": ["redis_host"],
}
#: ``policy: redis-cluster`` settings
REDIS_CLUSTER_SCHEMA: dict[str, Any] = {
    "properties": {
        "redis_cluster_nodes": {"type": "array", "minItems": 1,
                                "items": {"type": "string", "minLength": 2,
                                          "maxLength": 100}},
        "redis_password": {"type": "string", "minLength": 0},
        "redis_timeout": {"type": "integer", "minimum": 1, "default": 1000},
        "redis_cluster_name": {"type": "string"},
        "redis_cluster_ssl": {"type": "boolean", "default": False},
        "redis_cluster_ssl_verify": {"type": "boolean", "default": False},
        "redis_keepalive_timeout": {"type": "integer", "minimum": 1000, "default": 10000},
        "redis_keepalive_pool": {"type": "integer", "minimum": 1, "default": 100},
    },
    "required": ["redis_cluster_nodes", "redis_cluster_name"],
}


def policy_schema(key_ttl: bool = False) -> dict[str, Any]:
    """APISIX's ``if policy == redis then ... else if redis-cluster then ...`` block, to
    merge into a plugin schema (limit-conn adds ``key_ttl`` to both)."""
    red = copy.deepcopy(REDIS_SCHEMA)
    cluster = copy.deepcopy(REDIS_CLUSTER_SCHEMA)
    if key_ttl:
        for part in (red, cluster):
            part["properties"]["key_ttl"] = {"type": "integer", "default": 3600}
    # ("required" in the ifs: our validator checks before it fills in the default
    # policy "local", where APISIX's fills it in while it checks)
    return {
        "if": {"properties": {"policy": {"enum": ["redis"]}}, "required": ["policy"]},
        "then": red,
        "else": {"if": {"properties": {"policy": {"enum": ["redis-cluster"]}},
                        "required": ["policy"]},
                 "then": cluster},
    }


def fill_policy_defaults(conf: dict[str, Any], key_ttl: bool = False) -> None:
    """The defaults of the policy's branch (redis_port, redis_timeout...), which APISIX's
    validator fills in while it checks the if/then schema and ours does not reach."""
    branch = {"redis": REDIS_SCHEMA, "redis-cluster": REDIS_CLUSTER_SCHEMA}.get(
        conf.get("policy"))
    if branch is None:
        return
    for name, prop in branch["properties"].items():
        if "default" in prop and name not in conf:
            conf[name] = copy.deepcopy(prop["default"])
    if key_ttl and "key_ttl" not in conf:
        conf["key_ttl"] = 3600


_VAR = re.compile(r"(?<!\\)\$(\{\s*([^}]+?)\s*\}|([\w.]+))")
_DEFAULT = re.compile(r"\s*\?\?\s*")


def compile_resolver(tpl: str) -> Callable[[Any], tuple[str, int]]:
    """APISIX's ``core.utils.resolve_var`` with its count: ``tpl`` → ``fn(vars)`` giving
    (resolved text, number of variables that resolved). A template without ``$`` resolves
    to itself with a count of 0 (which, for limit-count's rules, means "not applicable")."""
    if "$" not in tpl:
        return lambda v: (tpl, 0)
    parts: list[Any] = []
    pos = 0
    for m in _VAR.finditer(tpl):
        if m.start() > pos:
            parts.append(tpl[pos:m.start()])
        segs = _DEFAULT.split(m.group(2) or m.group(3), maxsplit=1)
        parts.append((getter(segs[0]), segs[1] if len(segs) > 1 else None))
        pos = m.end()
    if pos < len(tpl):
        parts.append(tpl[pos:])
    frozen = tuple(parts)

    def resolve(v: Any) -> tuple[str, int]:
        out = []
        n = 0
        for part in frozen:
            if isinstance(part, str):
                out.append(part)
                continue
            get, default = part
            value = get(v)
            if value is None:
                if default is None:
                    continue
                value = default
            n += 1
            out.append(number(value) if isinstance(value, (int, float)) else str(value))
        return "".join(out), n
    return resolve


def scope(ctx: Any, prepared: Any) -> str:
    """Whose counters a limit instance uses: ``global`` when it comes from a global rule
    (shared by every route, as APISIX keys it by the global rule), else the route id.
    (A scan of the chain's global access entries: usually none.)"""
    chain = ctx.chain
    if chain is not None and chain.g_access:
        for _fn, inst in chain.g_access:
            if inst.conf is prepared:
                return "global"
    return "%s" % ctx.route_id


def remote_addr(ctx: Any) -> str:
    return ctx.client.remote.decode("latin-1")


def compile_key(key: str, key_type: str) -> Callable[[Any], str]:
    """``fn(ctx)`` → the limit key value of a request; an empty or absent value falls back
    to the client address, as APISIX does."""
    if key_type == "constant":
        return lambda ctx: key
    if key_type == "var_combination":
        resolve = compile_resolver(key)

        def combination(ctx: Any) -> str:
            value, n = resolve(ctx.vars)
            return value if n else remote_addr(ctx)
        return combination
    if key == "remote_addr":
        return remote_addr
    get = getter(key)

    def var(ctx: Any) -> str:
        value = get(ctx.vars)
        if value is None or value == "":
            return remote_addr(ctx)
        return value if isinstance(value, str) else number(value) \
            if isinstance(value, (int, float)) else str(value)
    return var


def number(value: float) -> str:
    """A number as Lua prints it in a header: 60 → "60", 59.99 → "59.99"."""
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return "%.14g" % value
    return str(value)
