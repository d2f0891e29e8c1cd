"""consumer-restriction: allow or refuse requests by consumer name, consumer group, route
or service (APISIX ``consumer-restriction``, priority 2400, access phase: after the auth
plugins and the consumer merge).

``type`` picks the value (``consumer_name`` by default); no value (e.g. no consumer was
authenticated): 401 ``The request is rejected, please check the <type> for this request``.
``blacklist`` refuses the listed values; ``whitelist`` allows only them;
``allowed_by_methods`` (``[{user, methods}]``) limits the listed values to methods unless
whitelisted. Refused: ``rejected_code`` (403) with ``{"message": rejected_msg}`` or
``The <type> is forbidden.``
"""

from __future__ import annotations

from typing import Any

NAME = "consumer-restriction"
PRIORITY = 2400
VERSION = 0.1

_METHOD = {"description": "HTTP method", "type": "string",
           "enum": ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT",
                    "TRACE", "PURGE"]}

SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string",
                 "enum": ["consumer_name", "service_id", "route_id", "consumer_group_id"],
                 "default": "consumer_name"},
        "blacklist": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "whitelist": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "allowed_by_methods": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "user": {"type": "string"},
                    "methods": {"type": "array", "minItems": 1, "items": _METHOD},
                },
            },
        },
        "rejected_code": {"type": "integer", "minimum": 200, "default": 403},
        "rejected_msg": {"type": "string"},
    },
    "anyOf": [{"required": ["blacklist"]}, {"required": ["whitelist"]},
              {"required": ["allowed_by_methods"]}],
}


def _consumer_name(ctx: Any) -> Any:
    consumer = ctx.consumer
    return consumer.username if consumer is not None else None


def _consumer_group_id(ctx: Any) -> Any:
    consumer = ctx.consumer
    return consumer.group_id if consumer is not None else None


_VALUE = {
    "consumer_name": _consumer_name,
    "consumer_group_id": _consumer_group_id,
    "route_id": lambda ctx: ctx.route_id,
    "service_id": lambda ctx: ctx.service_id,
}


class _Conf:
    __slots__ = ("value", "blacklist", "whitelist", "methods", "rejected", "missing")

    def __init__(self, conf: dict[str, Any]):
        kind = conf["type"]
        self.value = _VALUE[kind]
        self.blacklist = frozenset(conf.get("blacklist") or ())
        self.whitelist = frozenset(conf.get("whitelist") or ()) \
            if conf.get("whitelist") else None
        #: user → allowed methods; the first entry for a user decides (as APISIX)
        self.methods: dict[str, frozenset[str]] = {}
        for entry in conf.get("allowed_by_methods") or ():
            user = entry.get("user")
            if user not in self.methods:
                self.methods[user] = frozenset(entry.get("methods") or ())
        message = conf.get("rejected_msg")
        if message is None:
            message = "The %s is forbidden." % kind
        self.rejected = (conf["rejected_code"], {"message": message})
        self.missing = (401, {"message": "The request is rejected, please check the %s "
                                         "for this request" % kind})


def prepare(conf: dict[str, Any]) -> _Conf:
    return _Conf(conf)


def access(conf: _Conf, ctx: Any) -> Any:
    value = conf.value(ctx)
    if value is None:
        return conf.missing
    value = str(value)
    if value in conf.blacklist:
        return conf.rejected
    whitelisted = False
    block = False
    if conf.whitelist is not None:
        whitelisted = value in conf.whitelist
        block = not whitelisted
    if conf.methods and not whitelisted:
        allowed = conf.methods.get(value)
        if allowed is not None and ctx.method not in allowed:
            block = True
    if block:
        return conf.rejected
    return None
