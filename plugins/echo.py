"""echo: replace, prefix or suffix the upstream's response body, and set response headers
(APISIX's test plugin ``echo``, priority 412).

Conf: ``before_body`` (prepended), ``body`` (replaces the body), ``after_body`` (appended),
``headers`` (response headers to set); at least one of the three body fields.
"""

from __future__ import annotations

from typing import Any

NAME = "echo"
PRIORITY = 412
VERSION = 0.1

SCHEMA = {
    "type": "object",
    "properties": {
        "before_body": {"description": "body before the filter phase.", "type": "string"},
        "body": {"description": "body to replace upstream response.", "type": "string"},
        "after_body": {"description": "body after the modification of filter phase.",
                       "type": "string"},
        "headers": {"description": "new headers for response", "type": "object",
                    "minProperties": 1},
    },
    "anyOf": [{"required": ["before_body"]}, {"required": ["body"]},
              {"required": ["after_body"]}],
    "minProperties": 1,
}


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    for field, value in (conf.get("headers") or {}).items():
        if not field:
            return "invalid field length in header"
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            return "invalid type as header value"
    return None


def header_filter(conf: dict[str, Any], ctx: Any) -> None:
    headers = ctx.response_headers
    if "body" in conf or "before_body" in conf or "after_body" in conf:
        headers.remove("Content-Length")  # the body changes (the runner re-frames it)
    for field, value in (conf.get("headers") or {}).items():
        headers.set(field, value)


def body_filter(conf: dict[str, Any], ctx: Any, chunk: bytes, eof: bool) -> bytes:
    state = ctx.data
    if "body" in conf:
        # the whole body is replaced: the first piece carries it, the rest is dropped
        if state.get("echo.replaced"):
            return b""
        state["echo.replaced"] = True
        chunk, eof = conf["body"].encode(), True
    if "before_body" in conf and not state.get("echo.before"):
        state["echo.before"] = True
        chunk = conf["before_body"].encode() + chunk
    if eof and "after_body" in conf and not state.get("echo.after"):
        state["echo.after"] = True
        chunk += conf["after_body"].encode()
    return chunk
