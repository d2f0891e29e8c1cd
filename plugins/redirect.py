"""redirect: answer with a redirection (APISIX ``redirect``, priority 900, rewrite phase).

Exactly one of ``uri`` (a template: ``$var``/``${var}``, ``\\$`` a literal dollar),
``regex_uri`` ([regex, replacement with ``$1``...], applied to ``$uri``; no match = no
redirect) or ``http_to_https``. ``ret_code`` (302) with ``Location``; ``encode_uri``
percent-encodes the path part; ``append_query_string`` appends the request's query.

``http_to_https`` (when the scheme, or ``X-Forwarded-Proto``, is not https) redirects to
``https://$host:<port>$request_uri`` with 301 for GET/HEAD and 308 otherwise; the port is
``plugin_attr.redirect.https_port``, else one of ``apisix.ssl.listen`` (when ssl is
enabled), left out when it is 443 or unknown — as APISIX does.
"""

from __future__ import annotations

import random
import re
from typing import Any
from urllib.parse import quote

from gateway.core import plugins as registry
from gateway.core.ctxvars import getter
from gateway.core.template import compile_template

NAME = "redirect"
PRIORITY = 900
VERSION = 0.1

URI_PATTERN = r"(\\\$[0-9a-zA-Z_]+)|\$\{([0-9a-zA-Z_]+)\}|\$([0-9a-zA-Z_]+)|(\$|[^$\\]+)"

SCHEMA = {
    "type": "object",
    "properties": {
        "ret_code": {"type": "integer", "minimum": 200, "default": 302},
        "uri": {"type": "string", "minLength": 2, "pattern": URI_PATTERN},
        "regex_uri": {"type": "array", "maxItems": 2, "minItems": 2,
                      "items": {"type": "string"}},
        "http_to_https": {"type": "boolean"},
        "encode_uri": {"type": "boolean", "default": False},
        "append_query_string": {"type": "boolean", "default": False},
    },
    "oneOf": [{"required": ["uri"]}, {"required": ["regex_uri"]},
              {"required": ["http_to_https"]}],
}


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    pair = conf.get("regex_uri")
    if pair:
        try:
            re.compile(pair[0])
        except re.error as e:
            return "invalid regex_uri (%s, %s), err:%s" % (pair[0], pair[1], e)
    if conf.get("http_to_https") and conf.get("append_query_string"):
        return "only one of `http_to_https` and `append_query_string` can be configured."
    return None


def _https_ports() -> list[int]:
    port = registry.plugin_attr("redirect").get("https_port")
    if port:
        return [int(port)]
    ssl = (registry.node_conf().get("apisix") or {}).get("ssl") or {}
    if not ssl.get("enable"):
        return []
    out = []
    for item in ssl.get("listen") or ():
        p = item.get("port") if isinstance(item, dict) else item
        if isinstance(p, int):
            out.append(p)
    return out


_URI_PARTS = re.compile(URI_PATTERN)


def _compile_uri(uri: str) -> Any:
    """APISIX's reading of a ``uri`` template: ``${name}``/``$name`` are variables,
    ``\\$name`` is kept literally (backslash included), a lone ``$`` is literal, and a
    backslash that starts none of these is dropped."""
    parts: list[Any] = []
    for m in _URI_PARTS.finditer(uri):
        name = m.group(2) or m.group(3)
        parts.append(getter(name) if name else (m.group(1) or m.group(4)))
    if all(isinstance(p, str) for p in parts):
        text = "".join(parts)
        return lambda v: text
    frozen = tuple(parts)

    def resolve(v: Any) -> str:
        out = []
        for p in frozen:
            if isinstance(p, str):
                out.append(p)
            else:
                value = p(v)
                if value is not None:
                    out.append(str(value))
        return "".join(out)
    return resolve


class _Redirect:
    __slots__ = ("code", "uri", "regex", "to_https", "encode", "append", "ports")

    def __init__(self, conf: dict[str, Any]):
        self.code = conf.get("ret_code", 302)
        uri = conf.get("uri")
        self.uri = _compile_uri(uri) if uri is not None else None
        pair = conf.get("regex_uri")
        self.regex = (re.compile(pair[0]), compile_template(pair[1])) if pair else None
        self.to_https = bool(conf.get("http_to_https"))
        self.encode = bool(conf.get("encode_uri"))
        self.append = bool(conf.get("append_query_string"))
        self.ports = _https_ports() if self.to_https else []


def prepare(conf: dict[str, Any]) -> _Redirect:
    return _Redirect(conf)


def rewrite(conf: _Redirect, ctx: Any) -> Any:
    code = conf.code
    new_uri: str | None = None
    if conf.to_https:
        scheme = ctx.get_header("x-forwarded-proto") or ctx.var("scheme") or "http"
        if scheme != "https":
            port = random.choice(conf.ports) if conf.ports else None
            v = ctx.vars
            new_uri = "https://%s%s%s" % (
                v["host"], "" if port is None or port == 443 or not 0 < port <= 65535
                else ":%d" % port, v["request_uri"])
            code = 301 if ctx.method in ("GET", "HEAD") else 308
    elif conf.uri is not None:
        new_uri = conf.uri(ctx.vars)
    elif conf.regex is not None:
        pattern, tpl = conf.regex
        uri = ctx.var("uri")
        m = pattern.search(uri)
        if m is None:
            return None
        groups = [m.group(0)] + list(m.groups())
        new_uri = uri[:m.start()] + tpl(ctx.vars, groups) + uri[m.end():]
    if new_uri is None:
        return None
    q = new_uri.find("?")
    if conf.encode:
        new_uri = quote(new_uri, safe="/") if q < 0 else \
            quote(new_uri[:q], safe="/") + new_uri[q:]
    if conf.append:
        args = ctx.args
        if args is not None:
            new_uri += ("&" if q >= 0 else "?") + args
    ctx.set_response_header("Location", new_uri)
    return code
