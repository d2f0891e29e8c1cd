"""brotli: compress responses for clients that accept ``br`` (APISIX ``brotli``, priority
996, header_filter + body_filter), with the ``brotli`` package (Google's bindings).

Compressed when: the client's Accept-Encoding is ``br`` or ``*``, or lists ``br``/``*``
without ``q=0``; the response has no Content-Encoding yet; its Content-Type (without
parameters) is one of ``types`` (or ``types: "*"``; no Content-Type: never); its
Content-Length, when known, is at least ``min_length``; the request is at least
HTTP/``http_version``. Then ``Content-Encoding: br``, no Content-Length (the body is
re-framed), a strong ETag weakened (an unquoted one dropped), and ``Vary:
Accept-Encoding`` with ``vary``. ``comp_level`` is brotli's quality (0-11), ``mode`` 0
generic / 1 text / 2 font, ``lgwin`` the window (0: brotli's default), ``lgblock`` the
input block (0: automatic). Each chunk is flushed as it goes, as APISIX does. Without the
``brotli`` package the plugin logs an error and passes responses through.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.core.log import log as _log

try:
    import brotli as _brotli
except ImportError:  # pragma: no cover - the package is an install requirement
    _brotli = None

NAME = "brotli"
PRIORITY = 996
VERSION = 0.1

SCHEMA = {
    "type": "object",
    "properties": {
        "types": {
            "anyOf": [
                {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                {"enum": ["*"]},
            ],
            "default": ["text/html"],
        },
        "min_length": {"type": "integer", "minimum": 1, "default": 20},
        "mode": {"type": "integer", "minimum": 0, "maximum": 2, "default": 0},
        "comp_level": {"type": "integer", "minimum": 0, "maximum": 11, "default": 6},
        "lgwin": {"type": "integer", "default": 19,
                  "enum": [0, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24]},
        "lgblock": {"type": "integer", "default": 0,
                    "enum": [0, 16, 17, 18, 19, 20, 21, 22, 23, 24]},
        "http_version": {"enum": [1.1, 1.0], "default": 1.1},
        "vary": {"type": "boolean"},
    },
}

_KEY = "brotli.c"
_CODING = re.compile(r"([a-z*]+)(;q=)?([0-9.]*)?")
_ETAG = re.compile(r'^(W/)?"([^"]*)"$')


class _Brotli:
    __slots__ = ("types", "min_length", "options", "minor", "vary")

    def __init__(self, conf: dict[str, Any]):
        types = conf.get("types", ["text/html"])
        self.types = None if types == "*" else frozenset(types)
        self.min_length = conf.get("min_length", 20)
        self.options = {"mode": conf.get("mode", 0), "quality": conf.get("comp_level", 6),
                        "lgblock": conf.get("lgblock", 0)}
        if conf.get("lgwin", 19):
            self.options["lgwin"] = conf.get("lgwin", 19)
        self.minor = 1 if float(conf.get("http_version", 1.1)) >= 1.1 else 0
        self.vary = bool(conf.get("vary"))


def prepare(conf: dict[str, Any]) -> _Brotli:
    return _Brotli(conf)


def _accepts_br(value: str | None) -> bool:
    if not value:
        return False
    if value in ("*", "br"):
        return True
    for m in _CODING.finditer(value):
        if m.group(1) in ("br", "*") and (not m.group(2) or m.group(3) != "0"):
            return True
    return False


def header_filter(conf: _Brotli, ctx: Any) -> None:
    if _brotli is None:
        _log.error("please check the brotli library")
        return
    if not _accepts_br(ctx.get_header("accept-encoding")):
        return
    headers = ctx.response_headers
    if headers.get("content-encoding"):
        return
    ctype = headers.get("content-type")
    if not ctype:
        return
    if conf.types is not None and ctype.split(";", 1)[0] not in conf.types:
        return
    length = ctx.response_length()
    if length is not None and length < conf.min_length:
        return
    if ctx.req.minor < conf.minor:
        return
    if conf.vary:
        headers.add("Vary", "Accept-Encoding")
    ctx.data[_KEY] = _brotli.Compressor(**conf.options)
    headers.remove("Content-Length")
    headers.set("Content-Encoding", "br")
    etag = headers.get("etag")
    if etag:
        m = _ETAG.match(etag)
        if m is None:
            headers.remove("ETag")
        elif m.group(1) is None:
            headers.set("ETag", 'W/"%s"' % m.group(2))


def body_filter(conf: _Brotli, ctx: Any, chunk: bytes, eof: bool) -> bytes | None:
    c = ctx.data.get(_KEY)
    if c is None:
        return None
    out = c.process(chunk) + c.flush() if chunk else b""
    if eof:
        out += c.finish()
        ctx.data[_KEY] = None
    return out
