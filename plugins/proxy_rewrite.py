"""proxy-rewrite: rewrite what goes to the upstream: URI (``uri`` with ``$var``, or
``regex_uri`` pairs), method, Host, request headers (APISIX ``proxy-rewrite``, priority
1008, rewrite phase).

Kept from APISIX: ``uri`` wins over ``regex_uri``; the first matching ``regex_uri`` pair is
applied (``$1``... in the replacement and in header values); the client's query string is
appended to the new URI; the result is percent-encoded like nginx's ``ngx_escape_uri``
(a ``?`` that ``uri`` itself writes starts a query); ``use_real_request_uri_unsafe`` sends the
raw request URI untouched; headers are applied add → set → remove, values may hold ``$var``.
Everything is compiled by :func:`prepare` when the table is built.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.core.template import compile_template
from gateway.worker.plugin_ctx import OWN_HEADERS, header_bytes

NAME = "proxy-rewrite"
PRIORITY = 1008
VERSION = 0.1

METHODS = ["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "MKCOL", "COPY", "MOVE",
           "PROPFIND", "LOCK", "UNLOCK", "PATCH", "TRACE"]
_VALUE = {"oneOf": [{"type": "string"}, {"type": "number"}]}
_VALUES = {"oneOf": [{"type": "string"}, {"type": "number"},
                     {"type": "array", "minItems": 1, "items": _VALUE}]}

SCHEMA = {
    "type": "object",
    "properties": {
        "uri": {"description": "new uri for upstream", "type": "string", "minLength": 1,
                "maxLength": 4096, "pattern": r"^\/.*"},
        "method": {"description": "proxy route method", "type": "string", "enum": METHODS},
        "regex_uri": {"description": "new uri that substitute from client uri for upstream, "
                                     "lower priority than uri property",
                      "type": "array", "minItems": 2,
                      "items": {"description": "regex uri", "type": "string"}},
        "host": {"description": "new host for upstream", "type": "string",
                 "pattern": r"^[0-9a-zA-Z-.]+(:\d{1,5})?$"},
        "headers": {
            "description": "new headers for request",
            "oneOf": [
                {"type": "object", "minProperties": 1, "additionalProperties": False,
                 "properties": {
                     "add": {"type": "object", "minProperties": 1,
                             "patternProperties": {"^[^:]+$": _VALUES}},
                     "set": {"type": "object", "minProperties": 1,
                             "patternProperties": {"^[^:]+$": _VALUES}},
                     "remove": {"type": "array", "minItems": 1,
                                "items": {"type": "string", "pattern": "^[^:]+$"}},
                 }},
                {"type": "object", "minProperties": 1,
                 "patternProperties": {"^[^:]+$": _VALUE}},
            ],
        },
        "use_real_request_uri_unsafe": {"description": "use real_request_uri instead, THIS "
                                                       "IS VERY UNSAFE.",
                                        "type": "boolean", "default": False},
    },
    "minProperties": 1,
}

_DOLLAR_GROUP = re.compile(r"\$\{?(\d+)\}?")


def _is_new_headers(headers: dict[str, Any]) -> bool:
    return any(isinstance(headers.get(k), t) for k, t in
               (("add", dict), ("set", dict), ("remove", list)))


def _valid_field(field: str) -> bool:
    return all(32 < ord(c) < 127 and c != ":" for c in field)


def _valid_value(value: Any) -> bool:
    return not isinstance(value, str) or all(c == "\t" or 31 < ord(c) != 127 for c in value)


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    pairs = conf.get("regex_uri")
    if pairs:
        if len(pairs) % 2:
            return "The length of regex_uri should be an even number"
        for i in range(0, len(pairs), 2):
            try:
                re.compile(pairs[i])
            except re.error as e:
                return "invalid regex_uri(%s, %s): %s" % (pairs[i], pairs[i + 1], e)
    headers = conf.get("headers")
    if isinstance(headers, dict) and not _is_new_headers(headers):
        for field, value in headers.items():
            if not field:
                return "invalid field length in header"
            if not _valid_field(field):
                return "invalid field character in header"
            if not _valid_value(value):
                return "invalid value character in header"
    return None


# ngx_escape_uri(NGX_ESCAPE_URI): control characters, space, #, %, ?, DEL and non-ASCII
_ESCAPED = frozenset(list(range(0x21)) + [0x23, 0x25, 0x3F] + list(range(0x7F, 0x100)))
_ESCAPE_TABLE = ["%%%02X" % b if b in _ESCAPED else chr(b) for b in range(256)]
_CONTROL_TABLE = ["%%%02X" % b if b < 0x20 or b == 0x7F else chr(b) for b in range(256)]


def _raw(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


_NEEDS_ESCAPE = re.compile("[\x00-\x20#%?\x7f-\U0010ffff]")
_NEEDS_CONTROL = re.compile("[\x00-\x1f\x7f]")
_NEEDS_ESCAPE_B = re.compile(b"[\x00-\x20#%?\x7f-\xff]")
_ESCAPE_BYTES = [t.encode("latin-1") for t in _ESCAPE_TABLE]


def _escape(text: str, table: list[str], conf_text: bool = False) -> str:
    """Percent-encode like nginx. Request-derived text holds the request's bytes (decoded
    as latin-1); text straight from the conf is UTF-8 (``conf_text``)."""
    needs = _NEEDS_ESCAPE if table is _ESCAPE_TABLE else _NEEDS_CONTROL
    if needs.search(text) is None:
        return text   # the common case: nothing to encode
    raw = text.encode("utf-8") if conf_text else _raw(text)
    return "".join(table[b] for b in raw)


class _Rewrite:
    __slots__ = ("uri", "fixed", "regex", "real", "plain", "host", "method", "add", "set",
                 "remove", "static")

    def __init__(self, conf: dict[str, Any]):
        self.real = bool(conf.get("use_real_request_uri_unsafe"))
        uri = conf.get("uri")
        self.uri = compile_template(uri, lambda s: s.replace("?", "%3F")) \
            if uri is not None else None
        #: a ``uri`` without variables, already encoded (no per-request work but the query)
        self.fixed = None
        if uri is not None and "$" not in uri and not self.real:
            q = uri.find("?")
            self.fixed = (_escape(uri, _ESCAPE_TABLE, True) if q < 0 else
                          _escape(uri[:q], _ESCAPE_TABLE, True)
                          + _escape(uri[q:], _CONTROL_TABLE, True), q >= 0)
        pairs = conf.get("regex_uri") or []
        self.regex = [(re.compile(pairs[i]), compile_template(
            _DOLLAR_GROUP.sub(r"${\1}", pairs[i + 1])))
            for i in range(0, len(pairs) - 1, 2)] if uri is None else []
        #: no ``uri``/``regex_uri``: the upstream gets the request's own (escaped) path
        self.plain = uri is None and not self.regex and not self.real
        self.host = conf.get("host")
        self.method = conf.get("method")
        self.add: list[tuple[str, list[Any]]] = []
        self.set: list[tuple[str, list[Any]]] = []
        self.remove: list[str] = []
        headers = conf.get("headers")
        if isinstance(headers, dict):
            if _is_new_headers(headers):
                self.add = self._compile(headers.get("add"))
                self.set = self._compile(headers.get("set"))
                self.remove = list(headers.get("remove") or ())
            else:
                self.set = self._compile(headers)
        self.static = self._static()

    def _static(self) -> tuple[frozenset[bytes], tuple[tuple[bytes, bytes], ...]] | None:
        """add/set/remove with constant values only, as one PluginCtx.edit_headers call
        (the headers it drops, the pairs it appends: what add, then set, then remove
        leave); None when a value has variables or a name is Host or one the gateway
        writes itself (those go through set_header)."""
        names = [name for name, _v in self.add + self.set] + self.remove
        if not (self.add or self.set or self.remove) or any(
                not isinstance(values, tuple) for _n, values in self.add + self.set) or any(
                not name.isascii() or name.lower() == "host" or name.lower() in OWN_HEADERS
                for name in names):
            return None
        removed = frozenset(name.lower().encode() for name in self.remove)
        dropped = removed | frozenset(name.lower().encode() for name, _v in self.set)
        pairs = [(name.encode(), header_bytes(v)) for name, values in self.add
                 if name.lower().encode() not in dropped for v in values]
        pairs += [(name.encode(), header_bytes(v)) for name, values in self.set
                  if name.lower().encode() not in removed for v in values
                  if header_bytes(v)]
        return dropped, tuple(pairs)

    @staticmethod
    def _compile(headers: Any) -> list[tuple[str, list[Any]]]:
        out = []
        for name, value in (headers or {}).items():
            values = value if isinstance(value, list) else [value]
            # a value without variables stays a constant: resolving it must not build
            # the request variables (RequestVars) on every request
            compiled = [compile_template(v) if isinstance(v, str) and "$" in v else v
                        for v in values]
            # constant values (no variable): a tuple, used as it is on every request
            out.append((name, compiled if any(callable(v) for v in compiled)
                        else tuple(compiled)))
        return out


def prepare(conf: dict[str, Any]) -> _Rewrite:
    return _Rewrite(conf)


def rewrite(conf: _Rewrite, ctx: Any) -> Any:
    if conf.host is not None:
        ctx.set_host(conf.host)
    if conf.fixed is not None:
        upstream_uri, has_query = conf.fixed
        args = ctx.args
        if args is not None:  # the request had a query string: it goes along
            upstream_uri += ("&" if has_query else "?") + args
        groups = None
    elif conf.plain:
        # what _target gives without uri/regex_uri, in bytes: the path as nginx's
        # ngx_escape_uri leaves it, then the request's query string
        req = ctx.req
        path = req.path
        upstream_uri = path if _NEEDS_ESCAPE_B.search(path) is None else \
            b"".join(_ESCAPE_BYTES[b] for b in path)
        url = req.url
        q = url.find(b"?") if url else -1
        if q >= 0:
            upstream_uri += url[q:]
        groups = None
    else:
        upstream_uri, groups = _target(conf, ctx)
    ctx.set_uri(upstream_uri)
    static = conf.static
    if static is not None:
        ctx.edit_headers(static[0], static[1])
        if conf.method is not None:
            ctx.set_method(conf.method)
        return None
    for name, values in conf.add:
        ctx.add_header(name, [_value(v, ctx, groups) for v in values])
    for name, values in conf.set:
        ctx.set_header(name, values if type(values) is tuple else
                       [_value(v, ctx, groups) for v in values])
    for name in conf.remove:
        ctx.remove_header(name)
    if conf.method is not None:
        ctx.set_method(conf.method)
    return None


def _target(conf: _Rewrite, ctx: Any) -> tuple[str, Any]:
    """The upstream target and the regex groups (APISIX's rewrite, step by step)."""
    groups = None
    if conf.real:
        upstream_uri = ctx.request_uri
        q = upstream_uri.find("?")
        query = upstream_uri[q:] if q >= 0 else ""
    else:
        upstream_uri = ctx.uri
        query = ""
    escaped = False
    if conf.uri is not None:
        escaped = True
        upstream_uri = conf.uri(ctx.vars)
        if query:
            upstream_uri += ("&" + query[1:]) if "?" in upstream_uri else query
    elif conf.regex:
        escaped = "?" not in upstream_uri
        for rx, replacement in conf.regex:
            m = rx.search(upstream_uri)
            if m is not None:
                groups = (m.group(0), *m.groups())
                upstream_uri = upstream_uri[:m.start()] + replacement(ctx.vars, groups) \
                    + upstream_uri[m.end():]
                break
    if not conf.real:
        index = upstream_uri.find("?") if escaped else -1
        if index >= 0:
            upstream_uri = _escape(upstream_uri[:index], _ESCAPE_TABLE) \
                + _escape(upstream_uri[index:], _CONTROL_TABLE)
        else:
            upstream_uri = _escape(upstream_uri, _ESCAPE_TABLE)
        args = ctx.args
        if args is not None:  # the request had a query string: it goes along
            upstream_uri += ("&" if index >= 0 else "?") + args
    return upstream_uri, groups


def _value(value: Any, ctx: Any, groups: Any) -> Any:
    return value(ctx.vars, groups) if callable(value) else value
