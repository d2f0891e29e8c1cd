"""uri-blocker: refuse requests whose ``$request_uri`` (path and query) matches one of
``block_rules`` (regular expressions joined with ``|``, ``(?i)`` with
``case_insensitive``) — APISIX ``uri-blocker``, priority 2900, rewrite phase.

A match answers ``rejected_code`` (403) with ``{"error_msg": <rejected_msg>}`` when a
message is configured, else the gateway's page for that status.
"""

from __future__ import annotations

import re
from typing import Any

NAME = "uri-blocker"
PRIORITY = 2900
VERSION = 0.1

SCHEMA = {
    "type": "object",
    "properties": {
        "block_rules": {"type": "array",
                        "items": {"type": "string", "minLength": 1, "maxLength": 4096},
                        "uniqueItems": True},
        "rejected_code": {"type": "integer", "minimum": 200, "default": 403},
        "rejected_msg": {"type": "string", "minLength": 1},
        "case_insensitive": {"type": "boolean", "default": False},
    },
    "required": ["block_rules"],
}


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    for rule in conf.get("block_rules") or ():
        try:
            re.compile(rule)
        except re.error as e:
            return "failed to compile regex %s: %s" % (rule, e)
    return None


def prepare(conf: dict[str, Any]) -> tuple[Any, Any]:
    rules = conf.get("block_rules") or []   # none: "" matches every URI, as in APISIX
    pattern = re.compile("|".join(rules), re.I if conf.get("case_insensitive") else 0)
    code = conf.get("rejected_code", 403)
    msg = conf.get("rejected_msg")
    return pattern.search, ((code, {"error_msg": msg}) if msg is not None else code)


def rewrite(conf: tuple[Any, Any], ctx: Any) -> Any:
    search, exit_ = conf
    if search(ctx.request_uri) is not None:
        return exit_
    return None
