"""The other Admin API objects: consumers and their credentials and groups, SSLs, global
rules, plugin configs, protos, secrets, stream routes, plugin metadata (spec §2.4–2.8)."""

from __future__ import annotations

from typing import Any

from gateway.core.schemas.common import (
                                         CERT,
                                         COMMON,
                                         DESC,
                                         HOST,
                                         ID,
                                         IP,
                                         KEY,
                                         LABELS,
                                         NAME,
                                         PLUGINS,
                                         PORT,
                                         TIMES,
)
from gateway.core.schemas.http import UPSTREAM

CONSUMER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "minLength": 1, "maxLength": 100,
                     "pattern": r"^[a-zA-Z0-9_\-]+$"},
        "group_id": ID, "plugins": PLUGINS, "desc": DESC, "labels": LABELS, **TIMES,
    },
    "required": ["username"],
    "additionalProperties": False,
}

CREDENTIAL: dict[str, Any] = {
    "type": "object",
    "properties": {**COMMON, "plugins": {"type": "object", "maxProperties": 1}},
    "additionalProperties": False,
}

CONSUMER_GROUP: dict[str, Any] = {
    "type": "object",
    "properties": {**COMMON, "plugins": PLUGINS},
    "required": ["plugins"],
    "additionalProperties": False,
}

_SNI = {"type": "string", "pattern": r"^\*?[0-9a-zA-Z-.]+$"}
SSL: dict[str, Any] = {
    "type": "object",
    "properties": {
        **COMMON,
        "type": {"type": "string", "enum": ["server", "client"]},
        "cert": CERT,
        "key": KEY,
        "sni": _SNI,
        "snis": {"type": "array", "minItems": 1, "items": _SNI},
        "certs": {"type": "array", "items": CERT},
        "keys": {"type": "array", "items": KEY},
        "client": {"type": "object",
                   "properties": {"ca": CERT, "depth": {"type": "integer", "minimum": 0},
                                  "skip_mtls_uri_regex": {
                                      "type": "array", "minItems": 1, "uniqueItems": True,
                                      "items": {"type": "string"}}},
                   "required": ["ca"]},
        "ssl_protocols": {"type": "array", "maxItems": 3, "uniqueItems": True,
                          "items": {"type": "string",
                                    "enum": ["TLSv1.1", "TLSv1.2", "TLSv1.3"]}},
        "status": {"type": "integer", "enum": [1, 0]},
        "exptime": {"type": "integer", "minimum": 1588262400},
        "validity_start": {"type": "integer"},
        "validity_end": {"type": "integer"},
    },
    "additionalProperties": False,
    "if": {"properties": {"type": {"enum": ["server"]}}},
    "then": {"oneOf": [{"required": ["sni", "key", "cert"]},
                       {"required": ["snis", "key", "cert"]}]},
    "else": {"required": ["key", "cert"]},
}

GLOBAL_RULE: dict[str, Any] = {
    "type": "object",
    "properties": {"id": ID, "plugins": PLUGINS, **TIMES},
    "required": ["id", "plugins"],
    "additionalProperties": False,
}

PLUGIN_CONFIG: dict[str, Any] = {
    "type": "object",
    "properties": {**COMMON, "name": {"type": "string"}, "plugins": PLUGINS},
    "required": ["id", "plugins"],
    "additionalProperties": False,
}

PROTO: dict[str, Any] = {
    "type": "object",
    "properties": {**COMMON, "content": {"type": "string", "minLength": 1,
                                         "maxLength": 1024 * 1024}},
    "required": ["content"],
    "additionalProperties": False,
}

_SECRET_ID = {"type": "string"}   # "<manager>/<id>" in apisix.yaml; the key suffix in etcd
_URI = {"type": "string", "pattern": r"^[^\/]+:\/\/([\da-zA-Z.-]+|\[[\da-fA-F:]+\])(:\d+)?"}
SECRET_VAULT: dict[str, Any] = {
    "type": "object",
    "properties": {"id": _SECRET_ID, "uri": _URI, "prefix": {"type": "string"},
                   "token": {"type": "string"}, "namespace": {"type": "string"}, **TIMES},
    "required": ["uri", "prefix", "token"],
}
SECRET_AWS: dict[str, Any] = {
    "type": "object",
    "properties": {"id": _SECRET_ID, "access_key_id": {"type": "string"},
                   "secret_access_key": {"type": "string"},
                   "session_token": {"type": "string"}, "region": {"type": "string"},
                   "endpoint_url": _URI, **TIMES},
    "required": ["access_key_id", "secret_access_key"],
}
SECRET_GCP: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": _SECRET_ID,
        "auth_config": {"type": "object",
                        "properties": {"client_email": {"type": "string"},
                                       "private_key": {"type": "string"},
                                       "project_id": {"type": "string"},
                                       "token_uri": {"type": "string"},
                                       "entries_uri": {"type": "string"},
                                       "scope": {"type": "array",
                                                 "items": {"type": "string"}}},
                        "required": ["client_email", "private_key", "project_id"]},
        "auth_file": {"type": "string"},
        "ssl_verify": {"type": "boolean"},
        **TIMES,
    },
    "oneOf": [{"required": ["auth_config"]}, {"required": ["auth_file"]}],
}
SECRET_MANAGERS = {"vault": SECRET_VAULT, "aws": SECRET_AWS, "gcp": SECRET_GCP}
#: a secret whose manager is not known from its key: any manager's shape will do
SECRET: dict[str, Any] = {"anyOf": [SECRET_VAULT, SECRET_AWS, SECRET_GCP]}

STREAM_ROUTE: dict[str, Any] = {
    "type": "object",
    "properties": {
        **COMMON,
        "remote_addr": IP,
        "server_addr": IP,
        "server_port": PORT,
        "sni": HOST,
        "upstream": UPSTREAM,
        "upstream_id": ID,
        "service_id": ID,
        "plugins": PLUGINS,
        "protocol": {"type": "object",
                     "properties": {
                         "name": {"type": "string"},
                         "superior_id": ID,
                         "conf": {"type": "object"},
                         "logger": {"type": "array", "items": {
                             "type": "object",
                             "properties": {"name": {"type": "string"},
                                            "filter": {"type": "array"},
                                            "conf": {"type": "object"}},
                             "required": ["name"]}}},
                     "required": ["name"]},
    },
    "additionalProperties": False,
}

#: the body is the plugin's own metadata_schema, checked by the plugin layer
PLUGIN_METADATA: dict[str, Any] = {"type": "object"}

__all__ = [
                                         "CONSUMER",
                                         "CONSUMER_GROUP",
                                         "CREDENTIAL",
                                         "GLOBAL_RULE",
                                         "NAME",
                                         "PLUGIN_CONFIG",
                                         "PLUGIN_METADATA",
                                         "PROTO",
                                         "SECRET",
                                         "SECRET_MANAGERS",
                                         "SSL",
                                         "STREAM_ROUTE",
]
