"""Listening sockets, opened by the master and inherited by every worker.

We open them ourselves rather than through gunicorn's `create_sockets` so that an IPv6
wildcard socket is IPv6-only (as nginx's `ipv6only=on`; otherwise `[::]:9080` and
`0.0.0.0:9080` collide) and so that a port in use fails start-up at once with one clear line
instead of five retries. They are wrapped in gunicorn's socket classes so the arbiter's USR2
hand-over (`GUNICORN_FD`) keeps working.
"""

from __future__ import annotations

import socket

from gunicorn import sock as gsock

#: listen(2) backlog, as nginx's default on Linux
BACKLOG = 511


class ListenError(Exception):
    pass


def open_listener(ip: str, port: int, cfg, logger) -> gsock.BaseSocket:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    raw = socket.socket(family, socket.SOCK_STREAM)
    try:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            raw.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.bind((ip, port))
        raw.listen(BACKLOG)
    except OSError as exc:
        raw.close()
        where = "[%s]:%d" % (ip, port) if family == socket.AF_INET6 else "%s:%d" % (ip, port)
        raise ListenError("cannot listen on %s: %s" % (where, exc.strerror or exc)) from None
    wrapper = gsock.TCP6Socket if family == socket.AF_INET6 else gsock.TCPSocket
    # gunicorn's wrapper adopts the bound, listening fd as it does for inherited sockets
    return wrapper(raw.getsockname()[:2], cfg, logger, fd=raw.detach())


def open_all(addresses: list[tuple[str, int]], cfg, logger) -> list[gsock.BaseSocket]:
    opened: list[gsock.BaseSocket] = []
    try:
        for ip, port in addresses:
            opened.append(open_listener(ip, port, cfg, logger))
    except ListenError:
        for lnr in opened:
            lnr.close()
        raise
    return opened
