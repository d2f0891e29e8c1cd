"""gzip: compress responses for clients that accept gzip (APISIX ``gzip``, priority 995,
header_filter + body_filter; nginx's gzip filter decides the same way).

Compressed when: the client's Accept-Encoding has ``gzip`` (not ``q=0``), the request is
at least HTTP/``http_version``, the status is 200, 403 or 404, the response has no
Content-Encoding yet, its Content-Type (without parameters) is one of ``types`` (or
``types: "*"``), and its Content-Length, when known, is at least ``min_length``. Then
``Content-Encoding: gzip``, no Content-Length (the body is re-framed), a weak ETag, and
``Vary: Accept-Encoding`` with ``vary``. ``comp_level`` is zlib's level; ``buffers`` is
accepted for compatibility (zlib streams into our own chunks).
"""

from __future__ import annotations

import zlib
from typing import Any

NAME = "gzip"
PRIORITY = 995
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
        "comp_level": {"type": "integer", "minimum": 1, "maximum": 9, "default": 1},
        "http_version": {"enum": [1.1, 1.0], "default": 1.1},
        "buffers": {
            "type": "object",
            "properties": {
                "number": {"type": "integer", "minimum": 1, "default": 32},
                "size": {"type": "integer", "minimum": 1, "default": 4096},
            },
            "default": {"number": 32, "size": 4096},
        },
        "vary": {"type": "boolean"},
    },
}

_STATUSES = frozenset((200, 403, 404))
_KEY = "gzip.z"


class _Gzip:
    __slots__ = ("types", "min_length", "level", "minor", "vary")

    def __init__(self, conf: dict[str, Any]):
        types = conf.get("types", ["text/html"])
        self.types = None if types == "*" else frozenset(t.lower() for t in types)
        self.min_length = conf.get("min_length", 20)
        self.level = conf.get("comp_level", 1)
        self.minor = 1 if float(conf.get("http_version", 1.1)) >= 1.1 else 0
        self.vary = bool(conf.get("vary"))


def prepare(conf: dict[str, Any]) -> _Gzip:
    return _Gzip(conf)


def _accepts_gzip(value: str | None) -> bool:
    if not value:
        return False
    for part in value.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*") or coding.strip() == "x-gzip":
            q = params.replace(" ", "")
            if q.startswith("q=") and q[2:] and float(q[2:] or 0) == 0:
                return False
            return True
    return False


def header_filter(conf: _Gzip, ctx: Any) -> None:
    headers = ctx.response_headers
    if ctx.status not in _STATUSES or headers.get("content-encoding"):
        return
    if ctx.req.minor < conf.minor or ctx.method == "HEAD":
        return
    if not _accepts_gzip(ctx.get_header("accept-encoding")):
        return
    ctype = headers.get("content-type")
    if not ctype:
        return
    if conf.types is not None and ctype.split(";", 1)[0].strip().lower() not in conf.types:
        return
    length = ctx.response_length()
    if length is not None and length < conf.min_length:
        return
    headers.remove("Content-Length")
    headers.set("Content-Encoding", "gzip")
    etag = headers.get("etag")
    if etag and not etag.startswith("W/"):
        headers.set("ETag", "W/" + etag)
    if conf.vary:
        headers.add("Vary", "Accept-Encoding")
    ctx.data[_KEY] = zlib.compressobj(conf.level, zlib.DEFLATED, 31)


def body_filter(conf: _Gzip, ctx: Any, chunk: bytes, eof: bool) -> bytes | None:
    z = ctx.data.get(_KEY)
    if z is None:
        return None
    out = z.compress(chunk) if chunk else b""
    if eof:
        out += z.flush()
        ctx.data[_KEY] = None
    return out
