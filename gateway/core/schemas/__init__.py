"""JSON Schemas of the config objects, the checks JSON Schema cannot express, and the two
entry points: `check` for the config sources (etcd, apisix.yaml) and `validate` for the Admin
API, which answers with APISIX's message (`{"error_msg": validate(...)}`).

The order of the checks follows APISIX's admin modules: a route's `host`/`hosts` and
`remote_addr`/`remote_addrs` clash first, then the schema (`invalid configuration: ...`),
then the upstream rules, then compiled conditions. Plugin confs, dangling references and
certificate parsing belong to layers that know the plugins and the store.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

import jsonschema

from gateway.core import memory
from gateway.core.conditions import compile_remote_addrs, validate_filter_func
from gateway.core.schemas import fastcheck, http, objects
from gateway.core.schemas.common import ID, LABELS, TIMEOUT  # noqa: F401  (re-exported)
from gateway.core.schemas.messages import quote, translate
from gateway.core.vars import validate_vars

UPSTREAM = http.UPSTREAM
ROUTE = http.ROUTE
SERVICE = http.SERVICE

#: kind (the etcd directory name) → schema
SCHEMAS: dict[str, dict[str, Any]] = {
    "routes": http.ROUTE,
    "services": http.SERVICE,
    "upstreams": http.UPSTREAM,
    "consumers": objects.CONSUMER,
    "credentials": objects.CREDENTIAL,
    "consumer_groups": objects.CONSUMER_GROUP,
    "ssls": objects.SSL,
    "global_rules": objects.GLOBAL_RULE,
    "plugin_configs": objects.PLUGIN_CONFIG,
    "protos": objects.PROTO,
    "secrets": objects.SECRET,
    "stream_routes": objects.STREAM_ROUTE,
    "plugin_metadata": objects.PLUGIN_METADATA,
}

_FORMATS = jsonschema.Draft7Validator.FORMAT_CHECKER


def _validator(schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=_FORMATS)


_validators = {kind: _validator(schema) for kind, schema in SCHEMAS.items()}
_secret_validators = {name: _validator(schema)
                      for name, schema in objects.SECRET_MANAGERS.items()}
#: quick yes/no checks of the same schemas (jsonschema then only explains a "no"), compiled
#: at a schema's first use: compiling them all costs ~1 s at start and MBs in every process
_quick: dict[int, Any] = {}


def without_quick_checks() -> None:
    """This process (the master) validates with jsonschema alone, plugin confs included
    (fastcheck.disable says why)."""
    fastcheck.disable()
    _quick.clear()


def quick_check(validator: jsonschema.Draft7Validator) -> Any:
    """The compiled quick check of one of this module's validators (None: not compilable,
    or this process does without)."""
    if not fastcheck.enabled():
        return None
    key = id(validator)     # (the validators above live as long as the process)
    try:
        return _quick[key]
    except KeyError:
        quick = _quick[key] = fastcheck.compile_schema(validator.schema, _FORMATS)
        if quick is not None:
            memory.release()  # compiling the route schema peaks ~18 MB above what it keeps
        return quick

INVALID = "invalid configuration: "


def schema_error(kind: str, obj: Any, manager: str | None = None) -> str | None:
    """The APISIX wording of the first schema error of `obj`, None when it conforms."""
    validator = _validators.get(kind)
    if kind == "secrets":
        manager = manager or _secret_manager(obj)
        validator = _secret_validators.get(manager or "", validator)
    if validator is None:
        return None
    quick = quick_check(validator)
    if quick is not None and quick(obj):
        return None
    error = next(iter(validator.iter_errors(obj)), None)
    return None if error is None else translate(error)


def _secret_manager(obj: Any) -> str | None:
    ident = obj.get("id") if isinstance(obj, dict) else None
    if isinstance(ident, str) and "/" in ident:
        return ident.split("/", 1)[0]
    return None


def validate(kind: str, obj: Any, manager: str | None = None) -> str | None:
    """None when `obj` is a valid object of `kind` (e.g. "routes"), else the whole message an
    Admin API answers with: `invalid configuration: property "uri" validation failed: ...`,
    `only one of host or hosts is allowed`, `missing key`, ...

    `manager` names a secret's manager (vault, aws, gcp) when the id does not carry it.
    """
    if kind not in SCHEMAS:
        return None if isinstance(obj, dict) else INVALID + "expected an object"
    if kind == "routes" and isinstance(obj, dict):
        for one, many in (("host", "hosts"), ("remote_addr", "remote_addrs")):
            if obj.get(one) is not None and obj.get(many) is not None:
                return f"only one of {one} or {many} is allowed"
    problem = schema_error(kind, obj, manager)
    if problem is not None:
        return INVALID + problem
    for rule in _RULES.get(kind, ()):
        problem = rule(obj)
        if problem is not None:
            return problem
    return None


def check(kind: str, obj: Any, manager: str | None = None) -> str | None:
    """None when `obj` may be loaded by a config source, else the reason to log (the
    Admin API message without its `invalid configuration: ` lead). Kinds without a schema are
    accepted when they are objects."""
    problem = validate(kind, obj, manager)
    if problem is not None and problem.startswith(INVALID):
        return problem[len(INVALID):]
    return problem


# --- rules JSON Schema cannot express ------------------------------------------------------

_CHASH_VARS_KEY = (r"^((uri|server_name|server_addr|request_uri|remote_port|remote_addr"
                   r"|query_string|host|hostname|mqtt_client_id)|arg_[0-9a-zA-z_-]+)$")
_CHASH_NAME_KEY = r"^[a-zA-Z0-9-_]+$"
_CHASH_VARS_RE = re.compile(_CHASH_VARS_KEY)
_CHASH_NAME_RE = re.compile(_CHASH_NAME_KEY)


def check_upstream(up: Any) -> str | None:
    """APISIX's upstream rules beyond its schema (also run on inline upstreams)."""
    if not isinstance(up, dict):
        return None
    nodes = up.get("nodes")
    if isinstance(nodes, list):
        for node in nodes:
            host = node.get("host")
            if isinstance(host, str) and not host.startswith("[") and _is_ipv6(host):
                return "IPv6 address must be enclosed with '[' and ']'"
    elif isinstance(nodes, dict):
        for addr in nodes:
            port = _map_port(addr)
            if port is not None and not 1 <= port <= 65535:
                return f"invalid port {port}"
    if up.get("pass_host") == "rewrite" and not up.get("upstream_host"):
        return "`upstream_host` can't be empty when `pass_host` is `rewrite`"
    if up.get("type") == "chash":
        hash_on = up.get("hash_on") or "vars"
        key = up.get("key")
        if hash_on != "consumer" and not key:
            return "missing key"
        pattern = {"vars": _CHASH_VARS_RE, "header": _CHASH_NAME_RE,
                   "cookie": _CHASH_NAME_RE}.get(hash_on)
        if pattern is not None and not pattern.match(key):
            return (INVALID + 'property "key" validation failed: failed to match pattern '
                    f"{quote(pattern.pattern)} with {quote(key)}")
    return None


def _is_ipv6(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
    except ValueError:
        return False


def _map_port(addr: str) -> int | None:
    """The port of a `host:port` nodes key, None when it has none (or is a bare IPv6)."""
    if addr.startswith("["):
        _head, _, rest = addr.partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        if addr.count(":") != 1:
            return None
        port = addr.rpartition(":")[2]
    return int(port) if re.fullmatch(r"-?\d+", port) else None


def _route_rules(route: dict[str, Any]) -> str | None:
    problem = check_upstream(route.get("upstream"))
    if problem:
        return problem
    addrs = route.get("remote_addrs")
    if addrs is None and route.get("remote_addr") is not None:
        addrs = [route["remote_addr"]]
    if addrs is not None:
        try:
            compile_remote_addrs(addrs)
        except ValueError as e:
            return INVALID + f'property "remote_addrs" validation failed: {e}'
    if route.get("vars") is not None:
        reason = validate_vars(route["vars"])
        if reason:
            return f"failed to validate the 'vars' expression: {reason}"
    if route.get("filter_func") is not None:
        reason = validate_filter_func(route["filter_func"])
        if reason:
            return f"failed to load 'filter_func' string: {reason}"
    return None


def _ssl_rules(ssl: dict[str, Any]) -> str | None:
    certs, keys = ssl.get("certs"), ssl.get("keys")
    if (certs or keys) and len(certs or []) != len(keys or []):
        return "mismatched number of certs and keys"
    return None


_RULES: dict[str, tuple[Callable[[Any], str | None], ...]] = {
    "routes": (_route_rules,),
    "upstreams": (check_upstream,),
    "services": (lambda svc: check_upstream(svc.get("upstream")),),
    "stream_routes": (lambda sr: check_upstream(sr.get("upstream")),),
    "ssls": (_ssl_rules,),
}
