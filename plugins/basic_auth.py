"""basic-auth: HTTP Basic authentication against consumers' ``username``/``password``
(APISIX ``basic-auth``, priority 2520, rewrite phase).

No ``Authorization``: 401 ``Missing authorization in request``; a header that is not
``Basic <base64 of user:password>``: 401 ``Invalid authorization in request``; an unknown
user or a wrong password: 401 ``Invalid user authorization``; all with
``WWW-Authenticate: Basic realm="<realm>"``. As APISIX: the decoded value is split at
every ``:`` (the password is the second field) and whitespace is removed from both parts.
``hide_credentials`` removes ``Authorization``; ``anonymous_consumer`` as in key-auth.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from typing import Any

from gateway.core.log import log as _log
from gateway.worker import consumers

NAME = "basic-auth"
PRIORITY = 2520
VERSION = 0.1
TYPE = "auth"
CONSUMER_KEY = "username"
ENCRYPT_FIELDS = ("password",)

SCHEMA = {
    "type": "object",
    "title": "work with route or service object",
    "properties": {
        "hide_credentials": {"type": "boolean", "default": False},
        "realm": consumers.realm_schema("basic"),
        "anonymous_consumer": consumers.ANONYMOUS_CONSUMER_SCHEMA,
    },
}

CONSUMER_SCHEMA = {
    "type": "object",
    "title": "work with consumer object",
    "properties": {
        "username": {"type": "string"},
        "password": {"type": "string"},
    },
    "encrypt_fields": ["password"],
    "required": ["username", "password"],
}

MISSING = {"message": "Missing authorization in request"}
INVALID = {"message": "Invalid authorization in request"}
INVALID_USER = {"message": "Invalid user authorization"}

#: nginx's ``(?i:basic)\s(.+)``, unanchored, as APISIX matches it
_BASIC = re.compile(r"(?i:basic)\s(.+)")
_SPACE = re.compile(r"\s+")


class _Conf:
    __slots__ = ("hide", "anonymous", "challenge")

    def __init__(self, conf: dict[str, Any]):
        self.hide = bool(conf.get("hide_credentials"))
        self.anonymous = conf.get("anonymous_consumer")
        self.challenge = 'Basic realm="%s"' % conf["realm"]


def prepare(conf: dict[str, Any]) -> _Conf:
    return _Conf(conf)


def prepare_consumer(conf: dict[str, Any]) -> dict[str, Any]:
    """The password as bytes once, for a constant-time comparison."""
    out = dict(conf)
    out["password_bytes"] = str(conf.get("password", "")).encode()
    return out


def _extract(header: str) -> tuple[str, str] | None:
    """(username, password) of an ``Authorization`` value, None when malformed (the
    reason is logged at warn, never the credentials)."""
    m = _BASIC.search(header)
    if m is None:
        _log.warning("Invalid authorization header format")
        return None
    encoded = m.group(1)
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        _log.warning("Failed to decode authentication header")
        return None
    fields = decoded.split(":")
    if len(fields) < 2:
        _log.warning("Split authorization err: invalid decoded data")
        return None
    return _SPACE.sub("", fields[0]), _SPACE.sub("", fields[1])


def rewrite(conf: _Conf, ctx: Any) -> Any:
    header = ctx.get_header("Authorization")
    identity = None
    if header is None:
        error = MISSING
    else:
        pair = _extract(header)
        if pair is None:
            error = INVALID
        else:
            error = INVALID_USER
            found = consumers.find(ctx, NAME, pair[0])
            if found is None:
                _log.warning("failed to find user: invalid user")
            elif hmac.compare_digest(found.conf["password_bytes"], pair[1].encode()):
                identity = found
    if identity is None:
        if conf.anonymous is None:
            ctx.set_response_header("WWW-Authenticate", conf.challenge)
            return 401, error
        identity = consumers.anonymous(ctx, NAME, conf.anonymous)
        if identity is None:
            ctx.set_response_header("WWW-Authenticate", conf.challenge)
            return 401, INVALID_USER
    if conf.hide:
        ctx.remove_header("Authorization")
    consumers.attach(ctx, identity)
    return None
