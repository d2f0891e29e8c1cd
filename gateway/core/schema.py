"""JSON Schemas of the config objects, and the check every config source runs.

The foundation carries the core objects the data path reads (route, upstream, service) with
APISIX's field names and `additionalProperties: false`; the Admin API issue completes the set
(consumers, ssls, plugin schemas, cross-field rules) and the APISIX wording of messages.
"""

from __future__ import annotations

from typing import Any

import jsonschema

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
        return None
    where = "".join("[%d]" % p if isinstance(p, int) else ".%s" % p for p in error.absolute_path)
    field = where.lstrip(".")
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return "additional properties forbidden, found %s" % ", ".join(extra)
    return ('property "%s" validation failed: %s' % (field, error.message) if field
            else error.message)
