"""request-id: give every request an id (APISIX ``request-id``, priority 12015).

rewrite: a request without ``header_name`` (``X-Request-Id``), or with it empty, gets a new
id in that header to the upstream; an incoming id is kept. header_filter (with
``include_in_response``, the default): the response carries the id unless the upstream's
already has that header.

``algorithm``: ``uuid`` (v4), ``uuidv7``, ``nanoid`` (21 characters of ``A-Za-z0-9_-``),
``range_id`` (``length`` characters of ``char_set``), ``ksuid``. Ids come from
Python's Mersenne Twister (``random``, reseeded in each forked worker): no syscall per
request — they are unique ids, not secrets.
"""

from __future__ import annotations

import random
import time
from typing import Any

NAME = "request-id"
PRIORITY = 12015
VERSION = 0.1

CHAR_SET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIGKLMNOPQRSTUVWXYZ0123456789"
SCHEMA = {
    "type": "object",
    "properties": {
        "header_name": {"type": "string", "default": "X-Request-Id"},
        "include_in_response": {"type": "boolean", "default": True},
        "algorithm": {"type": "string",
                      "enum": ["uuid", "nanoid", "range_id", "ksuid", "uuidv7"],
                      "default": "uuid"},
        "range_id": {
            "type": "object",
            "properties": {
                "length": {"type": "integer", "minimum": 6, "default": 16},
                "char_set": {"type": "string", "minLength": 6, "default": CHAR_SET},
            },
            "default": {"length": 16, "char_set": CHAR_SET},
        },
    },
}

_bits = random.getrandbits
NANOID_ALPHABET = "-_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
KSUID_EPOCH = 1400000000


def _dashed(n: int) -> str:
    h = "%032x" % n
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def uuid4() -> str:
    n = _bits(128)
    n = (n & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    return _dashed(n)


def uuid7() -> str:
    ms = int(time.time() * 1000) & 0xFFFFFFFFFFFF
    n = (ms << 80) | (0x7 << 76) | (_bits(12) << 64) | (0x2 << 62) | _bits(62)
    return _dashed(n)


def nanoid() -> str:
    n = _bits(126)
    return "".join(NANOID_ALPHABET[(n >> (6 * i)) & 63] for i in range(21))


def ksuid() -> str:
    n = ((int(time.time()) - KSUID_EPOCH) & 0xFFFFFFFF) << 128 | _bits(128)
    out = []
    for _ in range(27):
        n, r = divmod(n, 62)
        out.append(BASE62[r])
    return "".join(reversed(out))


def _range_id(length: int, chars: str) -> Any:
    choices = random.choices
    return lambda: "".join(choices(chars, k=length))


class _RequestId:
    __slots__ = ("header", "respond", "make", "key")

    def __init__(self, conf: dict[str, Any]):
        self.header = conf.get("header_name", "X-Request-Id")
        self.respond = conf.get("include_in_response", True)
        self.key = "request-id-" + self.header
        algorithm = conf.get("algorithm", "uuid")
        if algorithm == "range_id":
            r = conf.get("range_id") or {}
            self.make = _range_id(r.get("length", 16), r.get("char_set", CHAR_SET))
        else:
            self.make = {"uuid": uuid4, "uuidv7": uuid7, "nanoid": nanoid,
                         "ksuid": ksuid}.get(algorithm, uuid4)


def prepare(conf: dict[str, Any]) -> _RequestId:
    return _RequestId(conf)


def rewrite(conf: _RequestId, ctx: Any) -> None:
    value = ctx.get_header(conf.header)
    if not value:
        value = conf.make()
        ctx.set_header(conf.header, value)
    if conf.respond:
        ctx.data[conf.key] = value


def header_filter(conf: _RequestId, ctx: Any) -> None:
    if not conf.respond:
        return
    headers = ctx.response_headers
    if not headers.get(conf.header):
        value = ctx.data.get(conf.key)
        if value is not None:
            headers.set(conf.header, value)
