"""key-auth: the consumer is the one whose ``key`` the request carries, in a header
(``apikey``) or else in the query string (``apikey``) (APISIX ``key-auth``, priority 2500,
rewrite phase).

No key: 401 ``Missing API key in request``; an unknown key: 401 ``Invalid API key in
request``; both with ``WWW-Authenticate: apikey realm="<realm>"``. ``hide_credentials``
removes the key before proxying; ``anonymous_consumer`` is used when authentication fails
(401 ``Invalid user authorization`` when that consumer does not exist). The key is never
logged.
"""

from __future__ import annotations

from typing import Any

from gateway.core.log import log as _log
from gateway.worker import consumers

NAME = "key-auth"
PRIORITY = 2500
VERSION = 0.1
TYPE = "auth"
#: the consumer conf attribute credentials are looked up by
CONSUMER_KEY = "key"
ENCRYPT_FIELDS = ("key",)

SCHEMA = {
    "type": "object",
    "properties": {
        "header": {"type": "string", "default": "apikey"},
        "query": {"type": "string", "default": "apikey"},
        "realm": consumers.realm_schema("key"),
        "hide_credentials": {"type": "boolean", "default": False},
        "anonymous_consumer": consumers.ANONYMOUS_CONSUMER_SCHEMA,
    },
}

CONSUMER_SCHEMA = {
    "type": "object",
    "properties": {"key": {"type": "string"}},
    "encrypt_fields": ["key"],
    "required": ["key"],
}

MISSING = {"message": "Missing API key in request"}
INVALID = {"message": "Invalid API key in request"}
ANONYMOUS_MISSING = {"message": "Invalid user authorization"}


class _Conf:
    __slots__ = ("header", "query", "hide", "anonymous", "challenge")

    def __init__(self, conf: dict[str, Any]):
        self.header = conf["header"]
        self.query = conf["query"]
        self.hide = bool(conf.get("hide_credentials"))
        self.anonymous = conf.get("anonymous_consumer")
        self.challenge = 'apikey realm="%s"' % conf["realm"]


def prepare(conf: dict[str, Any]) -> _Conf:
    return _Conf(conf)


def rewrite(conf: _Conf, ctx: Any) -> Any:
    from_header = True
    key = ctx.get_header(conf.header)
    if key is None:
        from_header = False
        key = consumers.query_arg(ctx, conf.query)
    identity = None
    if key is None:
        error = MISSING
    else:
        identity = consumers.find(ctx, NAME, key)
        error = INVALID
        if identity is None:
            _log.warning("failed to find consumer: invalid api key")
        elif conf.hide:
            _hide(conf, ctx, from_header)
    if identity is None:
        if conf.anonymous is None:
            ctx.set_response_header("WWW-Authenticate", conf.challenge)
            return 401, error
        if conf.hide:
            if ctx.get_header(conf.header) is not None:
                ctx.remove_header(conf.header)
            consumers.remove_query_arg(ctx, conf.query)
        identity = consumers.anonymous(ctx, NAME, conf.anonymous)
        if identity is None:
            ctx.set_response_header("WWW-Authenticate", conf.challenge)
            return 401, ANONYMOUS_MISSING
    consumers.attach(ctx, identity)
    return None


def _hide(conf: _Conf, ctx: Any, from_header: bool) -> None:
    if from_header:
        ctx.remove_header(conf.header)
    else:
        consumers.remove_query_arg(ctx, conf.query)
