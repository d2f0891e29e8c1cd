"""ua-restriction: allow (``allowlist``) or deny (``denylist``) requests by User-Agent,
each rule a regular expression searched in the (stripped) header value (APISIX
``ua-restriction``, priority 2999, access phase).

No User-Agent: 403 unless ``bypass_missing``. Blocked: 403 ``{"message": <message>}``
(default ``Not allowed``). Rules are compiled when the table is built; verdicts per
User-Agent value are cached (bounded).
"""

from __future__ import annotations

import re
from typing import Any

NAME = "ua-restriction"
PRIORITY = 2999
VERSION = 0.1

_RULES = {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}
SCHEMA = {
    "type": "object",
    "properties": {
        "bypass_missing": {"type": "boolean", "default": False},
        "allowlist": _RULES,
        "denylist": _RULES,
        "message": {"type": "string", "minLength": 1, "maxLength": 1024,
                    "default": "Not allowed"},
    },
    "oneOf": [{"required": ["allowlist"]}, {"required": ["denylist"]}],
}

CACHE_LIMIT = 4096


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    for rule in (conf.get("allowlist") or conf.get("denylist") or ()):
        try:
            re.compile(rule)
        except re.error as e:
            return "failed to compile regex %s: %s" % (rule, e)
    return None


class _Restriction:
    __slots__ = ("allow", "rules", "bypass", "exit", "cache")

    def __init__(self, conf: dict[str, Any]):
        self.allow = "allowlist" in conf
        self.rules = [re.compile(r) for r in (conf["allowlist"] if self.allow
                                               else conf["denylist"])]
        self.bypass = bool(conf.get("bypass_missing"))
        self.exit = (403, {"message": conf.get("message", "Not allowed")})
        self.cache: dict[str, bool] = {}

    def passes(self, ua: str) -> bool:
        ok = self.cache.get(ua)
        if ok is None:
            value = ua.strip()
            hit = any(r.search(value) for r in self.rules)
            ok = hit if self.allow else not hit
            if len(self.cache) >= CACHE_LIMIT:
                self.cache.clear()
            self.cache[ua] = ok
        return ok


def prepare(conf: dict[str, Any]) -> _Restriction:
    return _Restriction(conf)


def access(conf: _Restriction, ctx: Any) -> Any:
    ua = ctx.get_header("user-agent")
    if ua is None:
        return None if conf.bypass else conf.exit
    return None if conf.passes(ua) else conf.exit
