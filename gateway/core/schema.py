"""JSON Schemas of the config objects, and the check every config source runs.

The foundation carries the core objects the data path reads (route, upstream, service) with
APISIX's field names and `additionalProperties: false`; the Admin API issue completes the set
(consumers, ssls, plugin schemas, cross-field rules) and the APISIX wording of messages.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema

from gateway.core.conditions import compile_remote_addrs, validate_filter_func
from gateway.core.vars import validate_vars

_ID = {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 64,
                  "pattern": r"^[a-zA-Z0-9-_.]+$"},
                 {"type": "integer", "minimum": 1}]}
_LABELS = {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}}
_COMMON = {"id": _ID, "name": {"type": "string", "minLength": 1, "maxLength": 256},
           "desc": {"type": "string", "maxLength": 256}, "labels": _LABELS,
           "create_time": {"type": "integer"}, "update_time": {"type": "integer"}}
_HOST = {"type": "string", "pattern": r"^\*?[0-9a-zA-Z-._\[\]:]+$"}
_TIMEOUT = {"type": "object", "required": ["connect", "send", "read"],
            "properties": {k: {"type": "number", "exclusiveMinimum": 0}
                           for k in ("connect", "send", "read")},
            "additionalProperties": False}
_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
            "PURGE"]

UPSTREAM: dict[str, Any] = {
    "type": "object",
    "properties": {
        **_COMMON,
        "nodes": {"anyOf": [
            {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
            {"type": "array", "items": {
                "type": "object", "required": ["host", "weight"],
                "properties": {"host": {"type": "string"},
                               "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                               "weight": {"type": "integer", "minimum": 0},
                               "priority": {"type": "integer"},
                               "metadata": {"type": "object"}}}}]},
        "service_name": {"type": "string", "minLength": 1, "maxLength": 256},
        "discovery_type": {"type": "string"},
        "discovery_args": {"type": "object"},
        "type": {"type": "string"},
        "hash_on": {"enum": ["vars", "header", "cookie", "consumer", "vars_combinations"]},
        "key": {"type": "string"},
        "retries": {"type": "integer", "minimum": 0},
        "retry_timeout": {"type": "number", "minimum": 0},
        "timeout": _TIMEOUT,
        "scheme": {"enum": ["http", "https", "grpc", "grpcs", "tcp", "udp", "tls", "kafka"]},
        "pass_host": {"enum": ["pass", "node", "rewrite"]},
        "upstream_host": _HOST,
        "keepalive_pool": {"type": "object"},
        "tls": {"type": "object"},
        "checks": {"type": "object"},
    },
    "oneOf": [{"required": ["nodes"]}, {"required": ["service_name", "discovery_type"]}],
    "additionalProperties": False,
}

ROUTE: dict[str, Any] = {
    "type": "object",
    "properties": {
        **_COMMON,
        "uri": {"type": "string", "minLength": 1, "maxLength": 4096},
        "uris": {"type": "array", "minItems": 1, "uniqueItems": True,
                 "items": {"type": "string", "minLength": 1, "maxLength": 4096}},
        "host": _HOST,
        "hosts": {"type": "array", "minItems": 1, "uniqueItems": True, "items": _HOST},
        "methods": {"type": "array", "uniqueItems": True, "items": {"enum": _METHODS}},
        "remote_addr": {"type": "string"},
        "remote_addrs": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "vars": {"type": "array"},
        "priority": {"type": "integer"},
        "filter_func": {"type": "string", "minLength": 10},
        "plugins": {"type": "object"},
        "script": {"type": "string"},
        "script_id": _ID,
        "upstream": UPSTREAM,
        "upstream_id": _ID,
        "service_id": _ID,
        "plugin_config_id": _ID,
        "timeout": _TIMEOUT,
        "enable_websocket": {"type": "boolean"},
        "status": {"enum": [0, 1]},
    },
    "allOf": [
        {"oneOf": [{"required": ["uri"]}, {"required": ["uris"]}]},
        {"anyOf": [{"required": ["plugins"]}, {"required": ["upstream"]},
                   {"required": ["upstream_id"]}, {"required": ["service_id"]},
                   {"required": ["script"]}, {"required": ["plugin_config_id"]}]},
        {"not": {"required": ["host", "hosts"]}},
    ],
    "additionalProperties": False,
}

SERVICE: dict[str, Any] = {
    "type": "object",
    "properties": {**_COMMON, "plugins": {"type": "object"}, "upstream": UPSTREAM,
                   "upstream_id": _ID, "script": {"type": "string"},
                   "enable_websocket": {"type": "boolean"},
                   "hosts": {"type": "array", "minItems": 1, "items": _HOST}},
    "additionalProperties": False,
}

SCHEMAS: dict[str, dict[str, Any]] = {"routes": ROUTE, "upstreams": UPSTREAM, "services": SERVICE}
_validators = {kind: jsonschema.Draft7Validator(schema) for kind, schema in SCHEMAS.items()}


def check(kind: str, obj: Any) -> str | None:
    """None when `obj` is a valid object of `kind` (e.g. "routes"), else the reason.

    Kinds without a schema yet are accepted when they are objects.
    """
    validator = _validators.get(kind)
    if validator is None:
        return None if isinstance(obj, dict) else "invalid %s: expected an object" % kind
    error = jsonschema.exceptions.best_match(validator.iter_errors(obj))
    if error is None:
        return _semantic(kind, obj)
    where = "".join("[%d]" % p if isinstance(p, int) else ".%s" % p for p in error.absolute_path)
    field = where.lstrip(".")
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return "additional properties forbidden, found %s" % ", ".join(extra)
    return ('property "%s" validation failed: %s' % (field, error.message) if field
            else error.message)


_CHASH_VARS_KEY = re.compile(r"^((uri|server_name|server_addr|request_uri|remote_port"
                             r"|remote_addr|query_string|host|hostname|mqtt_client_id)"
                             r"|arg_[0-9a-zA-z_-]+)$")
_CHASH_NAME_KEY = re.compile(r"^[a-zA-Z0-9-_]+$")


def _semantic(kind: str, obj: Any) -> str | None:
    """Checks JSON Schema cannot express: the route's compiled conditions (a bad ``vars``
    expression or ``filter_func`` is refused here, never found at request time) and the
    chash key rules."""
    if kind == "routes":
        if obj.get("vars") is not None:
            reason = validate_vars(obj["vars"])
            if reason:
                return 'failed to validate the \'vars\' expression: %s' % reason
        if obj.get("filter_func") is not None:
            reason = validate_filter_func(obj["filter_func"])
            if reason:
                return 'property "filter_func" validation failed: %s' % reason
        addrs = obj.get("remote_addrs")
        if addrs is None and obj.get("remote_addr") is not None:
            addrs = [obj["remote_addr"]]
        if addrs is not None:
            try:
                compile_remote_addrs(addrs)
            except ValueError as e:
                return 'property "remote_addrs" validation failed: %s' % e
        if isinstance(obj.get("upstream"), dict):
            return _semantic("upstreams", obj["upstream"])
    elif kind in ("upstreams", "services"):
        up = obj if kind == "upstreams" else obj.get("upstream")
        if isinstance(up, dict) and up.get("type") == "chash":
            hash_on = up.get("hash_on") or "vars"
            key = up.get("key")
            if hash_on != "consumer" and not key:
                return "missing key"
            if hash_on == "vars" and not _CHASH_VARS_KEY.match(key):
                return "invalid configuration: %s" % (
                    'property "key" validation failed: failed to match pattern')
            if hash_on in ("header", "cookie") and not _CHASH_NAME_KEY.match(key):
                return "invalid configuration: %s" % (
                    'property "key" validation failed: failed to match pattern')
    return None
