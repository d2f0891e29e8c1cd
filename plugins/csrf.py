"""csrf: double-submit-cookie CSRF protection (APISIX ``csrf``, priority 2980).

header_filter: every response sets the cookie ``<name>=<base64 of {"random","expires",
"sign"}>;path=/;SameSite=Lax;Expires=<now + expires>``, where ``sign`` is the hex SHA-256 of
``{expires:<t>,random:<r>,key:<key>}`` (so tokens are interchangeable with APISIX's for the
same key). access: a request whose method is not GET, HEAD or OPTIONS needs the header
``<name>`` equal to the cookie ``<name>`` and a valid, unexpired signature, else 401 with
``{"error_msg": ...}``: ``no csrf token in headers``, ``no csrf cookie``, ``csrf token
mismatch``, ``Failed to verify the csrf token signature``.

The random part comes from a PRNG seeded per worker (no syscall per response).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import time
from email.utils import formatdate
from typing import Any

from gateway.core.log import log as _log

NAME = "csrf"
PRIORITY = 2980
VERSION = 0.1
ENCRYPT_FIELDS = ("key",)

SCHEMA = {
    "type": "object",
    "properties": {
        "key": {"description": "use to generate csrf token", "type": "string"},
        "expires": {"description": "expires time(s) for csrf token", "type": "integer",
                    "default": 7200},
        "name": {"description": "the csrf token name", "type": "string",
                 "default": "apisix-csrf-token"},
    },
    "required": ["key"],
}

SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
_RANDOM = random.Random()


def _num(value: Any) -> str:
    """A number as Lua's tostring writes it (``%.14g``)."""
    if isinstance(value, float):
        return "%.14g" % value
    return str(value)


def _sign(rand: Any, expires: Any, key: str) -> str:
    text = "{expires:%s,random:%s,key:%s}" % (_num(expires), _num(rand), key)
    return hashlib.sha256(text.encode()).hexdigest()


class _Csrf:
    __slots__ = ("key", "expires", "name", "var")

    def __init__(self, conf: dict[str, Any]):
        self.key = conf["key"]
        self.expires = conf.get("expires", 7200)
        self.name = conf.get("name", "apisix-csrf-token")
        self.var = "cookie_" + self.name

    def token(self) -> str:
        rand = float("%.14g" % _RANDOM.random())
        now = int(time.time())
        body = json.dumps({"random": rand, "expires": now,
                           "sign": _sign(rand, now, self.key)}, separators=(",", ":"))
        return base64.b64encode(body.encode()).decode()

    def valid(self, token: str) -> bool:
        try:
            data = json.loads(base64.b64decode(token, validate=False))
        except (binascii.Error, ValueError):
            _log.error("csrf token base64 or json decode error")
            return False
        if not isinstance(data, dict):
            return False
        rand, expires = data.get("random"), data.get("expires")
        if rand is None or not isinstance(expires, (int, float)):
            _log.error("no random or expires in token")
            return False
        if self.expires > 0 and time.time() - expires > self.expires:
            _log.error("token has expired")
            return False
        if data.get("sign") != _sign(rand, expires, self.key):
            _log.error("Invalid signatures")
            return False
        return True


def prepare(conf: dict[str, Any]) -> _Csrf:
    return _Csrf(conf)


def access(conf: _Csrf, ctx: Any) -> Any:
    if ctx.method in SAFE_METHODS:
        return None
    header = ctx.get_header(conf.name)
    if not header:
        return 401, {"error_msg": "no csrf token in headers"}
    cookie = ctx.var(conf.var)
    if cookie is None:
        return 401, {"error_msg": "no csrf cookie"}
    if header != cookie:
        return 401, {"error_msg": "csrf token mismatch"}
    if not conf.valid(cookie):
        return 401, {"error_msg": "Failed to verify the csrf token signature"}
    return None


def header_filter(conf: _Csrf, ctx: Any) -> None:
    expires = formatdate(time.time() + conf.expires, usegmt=True)
    # nginx's cookie_time: "Thu, 01-Jan-1970 00:00:00 GMT"
    day, date = expires.split(", ", 1)
    d, mon, rest = date.split(" ", 2)
    ctx.response_headers.add("Set-Cookie", "%s=%s;path=/;SameSite=Lax;Expires=%s, %s-%s-%s"
                             % (conf.name, conf.token(), day, d, mon, rest))
