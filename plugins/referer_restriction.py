"""referer-restriction: allow (``whitelist``) or deny (``blacklist``) requests by the host
of their Referer (APISIX ``referer-restriction``, priority 2990, access phase).

Patterns are host names, ``*.example.com`` matching any host ending in ``.example.com``
(and ``*`` any host). The host is taken from ``[http[s]:]//host[:port]...`` as
lua-resty-http's ``parse_uri`` does; a Referer it cannot parse counts as missing. Missing:
403 unless ``bypass_missing``. Blocked: 403 ``{"message": <message>}``.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.core.schemas.common import ROUTE_HOST

NAME = "referer-restriction"
PRIORITY = 2990
VERSION = 0.1

SCHEMA = {
    "type": "object",
    "properties": {
        "bypass_missing": {"type": "boolean", "default": False},
        "whitelist": {"type": "array", "items": ROUTE_HOST, "minItems": 1},
        "blacklist": {"type": "array", "items": ROUTE_HOST, "minItems": 1},
        "message": {"type": "string", "minLength": 1, "maxLength": 1024,
                    "default": "Your referer host is not allowed"},
    },
    "oneOf": [{"required": ["whitelist"]}, {"required": ["blacklist"]}],
}

_URI = re.compile(r"^(?:(https?):)?//((?:[^\[\]:/?]+)|(?:\[.+\]))(?::(\d+))?([^?]*)\??(.*)")


def referer_host(referer: str | None) -> str | None:
    if not referer:
        return None
    m = _URI.match(referer)
    return m.group(2) if m else None


class _Matcher:
    __slots__ = ("allow", "exact", "suffixes", "bypass", "exit")

    def __init__(self, conf: dict[str, Any]):
        self.allow = "whitelist" in conf
        hosts = conf["whitelist"] if self.allow else conf["blacklist"]
        self.exact = frozenset(h for h in hosts if not h.startswith("*"))
        self.suffixes = tuple(h[1:] for h in hosts if h.startswith("*"))
        self.bypass = bool(conf.get("bypass_missing"))
        self.exit = (403, {"message": conf.get("message", "Your referer host is not allowed")})

    def match(self, host: str) -> bool:
        return host in self.exact or (bool(self.suffixes) and host.endswith(self.suffixes))


def prepare(conf: dict[str, Any]) -> _Matcher:
    return _Matcher(conf)


def access(conf: _Matcher, ctx: Any) -> Any:
    host = referer_host(ctx.get_header("referer"))
    if host is None:
        block = not conf.bypass
    else:
        hit = conf.match(host)
        block = not hit if conf.allow else hit
    return conf.exit if block else None
