"""``apisix.trusted_addresses``: whose X-Forwarded-* headers the upstream gets as sent.

A client whose address is trusted (a load balancer in front of the gateway) has its
X-Forwarded-For appended to and its X-Forwarded-Proto/Host/Port passed on; anyone else's
are replaced by the gateway's own values, so a client cannot forge its origin. The decision
is made once per connection (at accept) from a per-address cache, so a request pays nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from gateway.core.log import log

#: distinct client addresses remembered by the trust cache (it is cleared when full)
CACHE_SIZE = 4096


def trust_test(addresses: Any) -> Callable[[bytes], bool]:
    """A test of a client address (bytes, as accepted; ``unix:`` for a unix socket)
    against the trusted list. None or empty trusts nobody; an invalid entry is logged and
    skipped (the config loader validates the list's shape, not each address)."""
    nets: list[Any] = []
    unix = False
    for text in addresses or ():
        text = str(text).strip()
        if text == "unix:":
            unix = True
            continue
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            log.error("apisix.trusted_addresses: %r is not an IP address or CIDR", text)
    if not nets and not unix:
        return lambda remote: False
    cache: dict[bytes, bool] = {}

    def trusted(remote: bytes) -> bool:
        hit = cache.get(remote)
        if hit is not None:
            return hit
        if remote == b"unix:":
            ok = unix
        else:
            try:
                ip = ipaddress.ip_address(remote.decode("latin-1"))
            except ValueError:
                ok = False
            else:
                if ip.version == 6 and ip.ipv4_mapped is not None:
                    ip = ip.ipv4_mapped
                ok = any(ip.version == net.version and ip in net for net in nets)
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        cache[remote] = ok
        return ok
    return trusted
