"""Upstream, route and service: the objects the HTTP data path reads (spec §2.1–2.3)."""

from __future__ import annotations

from typing import Any

from gateway.core.schemas.common import (
                                         CERT,
                                         COMMON,
                                         HOST,
                                         ID,
                                         KEY,
                                         PLUGINS,
                                         PORT,
                                         ROUTE_HOST,
                                         TIMEOUT,
)

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
           "PURGE"]

_STATUSES = {"type": "array", "minItems": 1, "uniqueItems": True,
             "items": {"type": "integer", "minimum": 200, "maximum": 599}}
_ONE_TO_254 = {"type": "integer", "minimum": 1, "maximum": 254}
_ZERO_TO_254 = {"type": "integer", "minimum": 0, "maximum": 254}
_CHECK_TYPE = {"type": "string", "enum": ["http", "https", "tcp"]}

ACTIVE_CHECK = {
    "type": "object",
    "properties": {
        "type": _CHECK_TYPE,
        "timeout": {"type": "number"},
        "concurrency": {"type": "integer"},
        "host": HOST,
        "port": PORT,
        "http_method": {"type": "string", "enum": ["GET", "POST", "PUT", "HEAD", "OPTIONS"]},
        "http_path": {"type": "string"},
        "http_req_body": {"type": "string"},
        "https_verify_certificate": {"type": "boolean"},
        "req_headers": {"type": "array", "minItems": 1, "uniqueItems": True,
                        "items": {"type": "string"}},
        "healthy": {"type": "object", "properties": {
            "interval": {"type": "integer", "minimum": 1},
            "http_statuses": _STATUSES, "successes": _ONE_TO_254}},
        "unhealthy": {"type": "object", "properties": {
            "interval": {"type": "integer", "minimum": 1},
            "http_statuses": _STATUSES, "http_failures": _ONE_TO_254,
            "tcp_failures": _ONE_TO_254, "timeouts": _ONE_TO_254}},
    },
}
PASSIVE_CHECK = {
    "type": "object",
    "properties": {
        "type": _CHECK_TYPE,
        "healthy": {"type": "object", "properties": {
            "http_statuses": _STATUSES, "successes": _ZERO_TO_254}},
        "unhealthy": {"type": "object", "properties": {
            "http_statuses": _STATUSES, "http_failures": _ZERO_TO_254,
            "tcp_failures": _ZERO_TO_254, "timeouts": _ZERO_TO_254}},
    },
}
CHECKS = {"type": "object",
          "properties": {"active": ACTIVE_CHECK, "passive": PASSIVE_CHECK},
          "anyOf": [{"required": ["active"]}, {"required": ["active", "passive"]}]}

#: client certificate for mTLS to the upstream: an inline pair, or the id of a client SSL
UPSTREAM_TLS = {
    "type": "object",
    "properties": {"client_cert_id": ID, "client_cert": CERT, "client_key": KEY,
                   "verify": {"type": "boolean"}},
    "dependencies": {
        "client_cert": {"required": ["client_key"], "not": {"required": ["client_cert_id"]}},
        "client_key": {"required": ["client_cert"], "not": {"required": ["client_cert_id"]}},
        "client_cert_id": {"not": {"required": ["client_cert", "client_key"]}},
    },
}

NODES = {"anyOf": [
    {"type": "object", "patternProperties": {".*": {"type": "integer", "minimum": 0}}},
    {"type": "array", "items": {
        "type": "object",
        "properties": {"host": HOST, "port": PORT,
                       "weight": {"type": "integer", "minimum": 0},
                       "priority": {"type": "integer"},
                       "metadata": {"type": "object"}},
        "required": ["host", "weight"]}},
]}

UPSTREAM: dict[str, Any] = {
    "type": "object",
    "properties": {
        **COMMON,
        "nodes": NODES,
        "service_name": {"type": "string", "minLength": 1, "maxLength": 256},
        "discovery_type": {"type": "string"},
        "discovery_args": {"type": "object", "properties": {
            "namespace_id": {"type": "string"}, "group_name": {"type": "string"}}},
        "type": {"type": "string"},
        "hash_on": {"type": "string",
                    "enum": ["vars", "header", "cookie", "consumer", "vars_combinations"]},
        "key": {"type": "string"},
        "retries": {"type": "integer", "minimum": 0},
        "retry_timeout": {"type": "number", "minimum": 0},
        "timeout": TIMEOUT,
        "scheme": {"type": "string",
                   "enum": ["http", "https", "grpc", "grpcs", "tcp", "udp", "tls", "kafka"]},
        "pass_host": {"type": "string", "enum": ["pass", "node", "rewrite"]},
        "upstream_host": HOST,
        "keepalive_pool": {"type": "object", "properties": {
            "size": {"type": "integer", "minimum": 1},
            "idle_timeout": {"type": "number", "minimum": 0},
            "requests": {"type": "integer", "minimum": 1}}},
        "tls": UPSTREAM_TLS,
        "checks": CHECKS,
    },
    "additionalProperties": False,
    "oneOf": [{"required": ["nodes"]}, {"required": ["service_name", "discovery_type"]}],
}

ROUTE: dict[str, Any] = {
    "type": "object",
    "properties": {
        **COMMON,
        "uri": {"type": "string", "minLength": 1, "maxLength": 4096},
        "uris": {"type": "array", "minItems": 1, "uniqueItems": True,
                 "items": {"type": "string", "minLength": 1, "maxLength": 4096}},
        "host": ROUTE_HOST,
        "hosts": {"type": "array", "minItems": 1, "uniqueItems": True, "items": ROUTE_HOST},
        "methods": {"type": "array", "uniqueItems": True,
                    "items": {"type": "string", "enum": METHODS}},
        "remote_addr": {"type": "string"},
        "remote_addrs": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "vars": {"type": "array"},
        "priority": {"type": "integer"},
        "filter_func": {"type": "string", "minLength": 10},
        "plugins": PLUGINS,
        "script": {"type": "string", "minLength": 10, "maxLength": 102400},
        "script_id": ID,
        "upstream": UPSTREAM,
        "upstream_id": ID,
        "service_id": ID,
        "plugin_config_id": ID,
        "timeout": TIMEOUT,
        "enable_websocket": {"type": "boolean"},
        "status": {"type": "integer", "enum": [1, 0]},
    },
    "additionalProperties": False,
    "anyOf": [{"required": ["plugins"]}, {"required": ["upstream"]},
              {"required": ["upstream_id"]}, {"required": ["service_id"]},
              {"required": ["plugin_config_id"]}, {"required": ["script"]}],
    "oneOf": [{"required": ["uri"]}, {"required": ["uris"]}],
    "not": {"anyOf": [{"required": ["script", "plugins"]},
                      {"required": ["script", "plugin_config_id"]}]},
}

SERVICE: dict[str, Any] = {
    "type": "object",
    "properties": {
        **COMMON,
        "plugins": PLUGINS,
        "upstream": UPSTREAM,
        "upstream_id": ID,
        "script": {"type": "string", "minLength": 10, "maxLength": 102400},
        "enable_websocket": {"type": "boolean"},
        "hosts": {"type": "array", "minItems": 1, "uniqueItems": True, "items": HOST},
    },
    "additionalProperties": False,
}
