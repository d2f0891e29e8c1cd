"""Building blocks shared by the object schemas: ids, metadata, hosts, timeouts, IPs.

Keys inside each schema dict are ordered as APISIX's validator checks them (type, properties,
required, additionalProperties, ..., anyOf, oneOf, if, not): the message layer reports the
first error jsonschema yields, so that order decides which problem a caller is told about.
"""

from __future__ import annotations

from typing import Any

ID: dict[str, Any] = {"anyOf": [
    {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[a-zA-Z0-9-_.]+$"},
    {"type": "integer", "minimum": 1}]}
NAME = {"type": "string", "minLength": 1, "maxLength": 256}
DESC = {"type": "string", "maxLength": 256}
LABELS = {"type": "object", "patternProperties": {
    ".*": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": r"^\S+$"}}}
TIMESTAMP = {"type": "integer"}
PLUGINS = {"type": "object"}

#: id/name/desc/labels/create_time/update_time, as most objects carry them
COMMON = {"id": ID, "name": NAME, "desc": DESC, "labels": LABELS,
          "create_time": TIMESTAMP, "update_time": TIMESTAMP}
TIMES = {"create_time": TIMESTAMP, "update_time": TIMESTAMP}

HOST_PATTERN = r"^\*?[0-9a-zA-Z-._\[\]:]+$"
HOST = {"type": "string", "pattern": HOST_PATTERN}
#: a route's host may also be the lone wildcard "*"
ROUTE_HOST = {"type": "string", "pattern": r"^\*$|" + HOST_PATTERN}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}

TIMEOUT = {"type": "object",
           "properties": {k: {"type": "number", "exclusiveMinimum": 0}
                          for k in ("connect", "send", "read")},
           "required": ["connect", "send", "read"],
           "additionalProperties": False}

_IPV4_CIDR = (r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
              r"/([12]?\d|3[0-2])$")
_IPV6_CIDR = r"^[0-9a-fA-F:.]+/(\d|[1-9]\d|1[01]\d|12[0-8])$"
#: an IPv4/IPv6 address or CIDR (stream routes; HTTP routes compile theirs in conditions.py)
IP = {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"},
                {"type": "string", "pattern": _IPV4_CIDR},
                {"type": "string", "pattern": _IPV6_CIDR}]}

#: PEM text, or a `$secret://` / `$env://` reference resolved at load time
SECRET_REF = {"type": "string", "pattern": r"^\$(secret|env|ENV)://"}
CERT = {"anyOf": [{"type": "string", "minLength": 128, "maxLength": 65536}, SECRET_REF]}
KEY = {"anyOf": [{"type": "string", "minLength": 64, "maxLength": 65536}, SECRET_REF]}
