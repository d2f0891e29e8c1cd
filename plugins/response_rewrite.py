"""response-rewrite: change the status, headers and body of the response the client gets
(APISIX ``response-rewrite``, priority 899, header_filter + body_filter).

``status_code``; ``headers`` either the legacy ``{name: value}`` (set) or ``{add: ["Name:
value"], set: {name: value}, remove: [name]}`` (applied add → set → remove; values may use
``$var``); ``body`` (``body_base64``: base64-decoded first) replaces the body; ``filters``
(``[{regex, replace, scope once|global, options}]``, exclusive with ``body``) substitute in
the whole buffered body (up to ``max_resp_body_size`` bytes); ``vars`` (an expression on
request and response variables such as ``status``): rewrite only when it matches. A changed
body drops Content-Length, Content-Encoding, Last-Modified and ETag. Regexes, templates and
the expression are compiled when the table is built.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from gateway.core.template import compile_template
from gateway.core.vars import VarsError, compile_vars

NAME = "response-rewrite"
PRIORITY = 899
VERSION = 0.1

_VALUE = {"oneOf": [{"type": "string"}, {"type": "number"}]}
SCHEMA = {
    "type": "object",
    "properties": {
        "max_resp_body_size": {"type": "integer", "minimum": 1, "default": 67108864},
        "headers": {
            "description": "new headers for response",
            "anyOf": [
                {"type": "object", "minProperties": 1,
                 "patternProperties": {"^[^:]+$": _VALUE}},
                {"properties": {
                    "add": {"type": "array", "minItems": 1,
                            "items": {"type": "string", "pattern": "^[^:]+:[^:]*[^/]$"}},
                    "set": {"type": "object", "minProperties": 1,
                            "patternProperties": {"^[^:]+$": _VALUE}},
                    "remove": {"type": "array", "minItems": 1,
                               "items": {"type": "string", "pattern": "^[^:]+$"}},
                }},
            ],
        },
        "body": {"description": "new body for response", "type": "string"},
        "body_base64": {"type": "boolean", "default": False},
        "status_code": {"type": "integer", "minimum": 200, "maximum": 598},
        "vars": {"type": "array"},
        "filters": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object",
                "required": ["regex", "replace"],
                "properties": {
                    "regex": {"type": "string", "minLength": 1},
                    "scope": {"type": "string", "enum": ["once", "global"],
                              "default": "once"},
                    "replace": {"type": "string"},
                    "options": {"type": "string", "default": "jo"},
                },
            },
        },
    },
    "dependencies": {
        "body": {"not": {"required": ["filters"]}},
        "filters": {"not": {"required": ["body"]}},
    },
}

_FLAGS = {"i": re.I, "m": re.M, "s": re.S, "x": re.X}
_GROUP_REF = re.compile(r"\$(?:(\d+)|\{(\d+)\})")


def _is_new_headers(headers: dict[str, Any]) -> bool:
    return any(isinstance(headers.get(k), (list, dict)) for k in ("add", "set", "remove"))


def _compile_filter(f: dict[str, Any]) -> tuple[Any, Any, int]:
    flags = 0
    for opt in f.get("options", "jo"):
        flags |= _FLAGS.get(opt, 0)
    pattern = re.compile(f["regex"], flags)
    # ngx.re.sub's replacement: $0, $1, ${1} name groups; everything else is literal
    replace = f["replace"]
    pieces: list[Any] = []
    pos = 0
    for m in _GROUP_REF.finditer(replace):
        pieces.append(replace[pos:m.start()])
        pieces.append(int(m.group(1) or m.group(2)))
        pos = m.end()
    pieces.append(replace[pos:])
    if len(pieces) == 1:
        text = pieces[0]
        repl: Any = lambda m: text  # noqa: E731 - literal, no backslash processing
    else:
        frozen = tuple(pieces)

        def repl(m: re.Match) -> str:
            return "".join(p if isinstance(p, str) else (m.group(p) or "") for p in frozen)
    return pattern, repl, 0 if f.get("scope") == "global" else 1


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    headers = conf.get("headers")
    if isinstance(headers, dict) and not _is_new_headers(headers):
        for field, value in headers.items():
            if not field:
                return "invalid field length in header"
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                return "invalid type as header value"
    if conf.get("body_base64"):
        body = conf.get("body")
        if not body:
            return "invalid base64 content"
        try:
            base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return "invalid base64 content"
    if conf.get("vars") is not None:
        try:
            compile_vars(conf["vars"])
        except VarsError as e:
            return "failed to validate the 'vars' expression: %s" % e
    for f in conf.get("filters") or ():
        try:
            _compile_filter(f)
        except re.error as e:
            return 'regex "%s" validation failed: %s' % (f["regex"], e)
    return None


def _value(v: Any) -> Any:
    return compile_template(v) if isinstance(v, str) and "$" in v else v


class _Rewrite:
    __slots__ = ("match", "status", "add", "set", "remove", "body", "filters", "limit",
                 "changes_body")

    def __init__(self, conf: dict[str, Any]):
        self.match = compile_vars(conf["vars"]) if conf.get("vars") else None
        self.status = conf.get("status_code")
        headers = conf.get("headers") or {}
        add: list[tuple[str, Any]] = []
        set_: list[tuple[str, Any]] = []
        remove: list[str] = []
        if _is_new_headers(headers):
            for line in headers.get("add") or ():
                m = re.match(r"^([^:\s]+)\s*:\s*([^:]+)$", line)
                if m:
                    add.append((m.group(1), _value(m.group(2))))
            for name, v in (headers.get("set") or {}).items():
                set_.append((name, _value(v)))
            remove = list(headers.get("remove") or ())
        else:
            set_ = [(name, _value(v)) for name, v in headers.items()]
        self.add, self.set, self.remove = tuple(add), tuple(set_), tuple(remove)
        body = conf.get("body")
        if body is not None:
            self.body: bytes | None = base64.b64decode(body) if conf.get("body_base64") \
                else body.encode()
        else:
            self.body = None
        self.filters = tuple(_compile_filter(f) for f in conf.get("filters") or ())
        self.limit = conf.get("max_resp_body_size", 67108864)
        self.changes_body = self.body is not None or bool(self.filters)


def prepare(conf: dict[str, Any]) -> _Rewrite:
    return _Rewrite(conf)


def _resolve(ctx: Any, value: Any) -> Any:
    return value(ctx.vars) if callable(value) else value


def header_filter(conf: _Rewrite, ctx: Any) -> None:
    if conf.match is not None:
        v = ctx.vars
        if v.extra is not None:
            v.extra["status"] = str(ctx.status)
        if not conf.match(v):
            return
    ctx.data["response-rewrite"] = True
    if conf.status is not None:
        ctx.status = conf.status
    headers = ctx.response_headers
    if conf.changes_body:
        for name in ("Content-Length", "Content-Encoding", "Last-Modified", "ETag"):
            headers.remove(name)
    for name, value in conf.add:
        headers.add(name, _resolve(ctx, value))
    for name, value in conf.set:
        headers.set(name, _resolve(ctx, value))
    for name in conf.remove:
        headers.remove(name)


def body_filter(conf: _Rewrite, ctx: Any, chunk: bytes, eof: bool) -> bytes | None:
    if not conf.changes_body:
        return None
    data = ctx.data
    if not data.get("response-rewrite"):
        return None
    if conf.body is not None:
        if data.get("response-rewrite.sent"):
            return b""
        data["response-rewrite.sent"] = True
        return conf.body
    held = data.get("response-rewrite.held")
    if not eof:
        if held is None:
            data["response-rewrite.held"] = held = []
        held.append(chunk)
        return b""
    body = b"".join(held) + chunk if held else chunk
    if len(body) > conf.limit:
        body = body[:conf.limit]
    text = body.decode("utf-8", "surrogateescape")
    for pattern, repl, count in conf.filters:
        text = pattern.sub(repl, text, count=count)
    return text.encode("utf-8", "surrogateescape")
