"""real-ip: take the client's address from a header or variable (APISIX ``real-ip``,
priority 23000, rewrite phase).

``source`` names the variable (``http_x_forwarded_for``: its last address, or with
``recursive`` the last one not in ``trusted_addresses``; ``arg_realip``, ``http_x_real_ip``
...). With ``trusted_addresses`` only requests from those peers are believed. A value that
is not an IP (optionally ``:port``, IPv6 in brackets) is ignored with a warning.

What it changes: ``$remote_addr`` (and ``$remote_port``) as later plugins and vars see them
(ip-restriction, limit keys, ``vars`` expressions; ``ctx.data["remote_addr"]``). The
X-Real-IP / X-Forwarded-For headers the gateway sends upstream still name the peer.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from gateway.core.log import log as _log
from gateway.core.schemas.common import IP
from gateway.core.ctxvars import getter

NAME = "real-ip"
PRIORITY = 23000
VERSION = 0.1

SCHEMA = {
    "type": "object",
    "properties": {
        "trusted_addresses": {"type": "array", "items": IP, "minItems": 1},
        "source": {"type": "string", "minLength": 1},
        "recursive": {"type": "boolean", "default": False},
    },
    "required": ["source"],
}

_SPLIT = re.compile(r",\s*")


def _network(cidr: str) -> Any:
    try:
        return ipaddress.ip_network(cidr.strip("[]"), strict=False)
    except ValueError:
        return None


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    for cidr in conf.get("trusted_addresses") or ():
        if _network(cidr) is None:
            return "invalid ip address: " + cidr
    return None


class _RealIp:
    __slots__ = ("source", "xff", "recursive", "trusted", "get")

    def __init__(self, conf: dict[str, Any]):
        self.source = conf["source"]
        self.xff = self.source == "http_x_forwarded_for"
        self.get = getter(self.source)
        self.recursive = bool(conf.get("recursive"))
        cidrs = conf.get("trusted_addresses")
        self.trusted = [n for n in map(_network, cidrs) if n is not None] if cidrs else None

    def trusts(self, addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr.strip("[]"))
        except ValueError:
            return False
        return any(ip in n for n in self.trusted if n.version == ip.version)


def prepare(conf: dict[str, Any]) -> _RealIp:
    return _RealIp(conf)


def _address(conf: _RealIp, ctx: Any) -> str | None:
    if not conf.xff:
        value = conf.get(ctx.vars)
        return str(value) if value is not None else None
    addrs = ctx.get_header("x-forwarded-for")
    if not addrs:
        return None
    if "," not in addrs:
        return addrs
    if conf.recursive and conf.trusted:
        parts = _SPLIT.split(addrs)
        for addr in reversed(parts[1:]):
            if not conf.trusts(addr):
                return addr
        return parts[0]
    return addrs[addrs.rfind(",") + 1:].lstrip(" ")


def _split(addr: str) -> tuple[str, int | None] | None:
    addr = addr.strip()
    port = None
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0:
            return None
        host, rest = addr[1:end], addr[end + 1:]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                return None
            port = int(rest[1:])
    elif addr.count(":") == 1:
        host, _, p = addr.partition(":")
        if not p.isdigit():
            return None
        port = int(p)
    else:
        host = addr
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host, port


def rewrite(conf: _RealIp, ctx: Any) -> None:
    if conf.trusted is not None and not conf.trusts(ctx.remote_addr):
        return
    addr = _address(conf, ctx)
    if not addr:
        _log.warning("missing real address")
        return
    parsed = _split(addr)
    if parsed is None:
        _log.warning("bad address: %s", addr)
        return
    ip, port = parsed
    if port is not None and not 1 <= port <= 65535:
        _log.warning("bad port: %s", port)
        return
    v = ctx.vars
    v.remote_addr = ip.encode()
    v._ip = None  # noqa: SLF001 - recomputed from the new address
    if port is not None and v.extra is not None:
        v.extra["remote_port"] = str(port)
    ctx.data["remote_addr"] = ip
