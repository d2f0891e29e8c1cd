"""ip-restriction: allow (``whitelist``) or deny (``blacklist``) client addresses, IPv4/IPv6
addresses or CIDRs (APISIX ``ip-restriction``, priority 3000, access phase).

A blocked client gets ``response_code`` (403, or 404) with ``{"message": <message>}``. The
address is the client's (``$remote_addr``, as real-ip leaves it). The lists are parsed into
networks when the table is built; the verdict per address is cached (bounded).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from gateway.core.schemas.common import IP

NAME = "ip-restriction"
PRIORITY = 3000
VERSION = 0.1

SCHEMA = {
    "type": "object",
    "properties": {
        "message": {"type": "string", "minLength": 1, "maxLength": 1024,
                    "default": "Your IP address is not allowed"},
        "response_code": {"type": "integer", "minimum": 403, "maximum": 404,
                          "default": 403},
        "whitelist": {"type": "array", "items": IP, "minItems": 1},
        "blacklist": {"type": "array", "items": IP, "minItems": 1},
    },
    "oneOf": [{"required": ["whitelist"]}, {"required": ["blacklist"]}],
}

#: verdicts kept per conf; beyond it the cache starts over
CACHE_LIMIT = 4096


def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(cidr.strip("[]"), strict=False)
    except ValueError:
        return None


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    for field in ("whitelist", "blacklist"):
        for cidr in conf.get(field) or ():
            if _network(cidr) is None:
                return "invalid ip address: " + cidr
    return None


class _Restriction:
    __slots__ = ("allow", "networks", "exit", "cache")

    def __init__(self, conf: dict[str, Any]):
        self.allow = "whitelist" in conf
        cidrs = conf["whitelist"] if self.allow else conf["blacklist"]
        self.networks = [n for n in map(_network, cidrs) if n is not None]
        self.exit = (conf.get("response_code", 403),
                     {"message": conf.get("message", "Your IP address is not allowed")})
        self.cache: dict[str, bool] = {}

    def blocked(self, addr: str) -> bool:
        verdict = self.cache.get(addr)
        if verdict is None:
            try:
                ip = ipaddress.ip_address(addr)
            except ValueError:
                ip = None
            if ip is not None and ip.version == 6 and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            hit = ip is not None and any(ip in n for n in self.networks
                                         if n.version == ip.version)
            verdict = not hit if self.allow else hit
            if len(self.cache) >= CACHE_LIMIT:
                self.cache.clear()
            self.cache[addr] = verdict
        return verdict


def prepare(conf: dict[str, Any]) -> _Restriction:
    return _Restriction(conf)


def access(conf: _Restriction, ctx: Any) -> Any:
    # real-ip leaves the client's address in ctx.data["remote_addr"]
    if conf.blocked(ctx.data.get("remote_addr") or ctx.remote_addr):
        return conf.exit
    return None
