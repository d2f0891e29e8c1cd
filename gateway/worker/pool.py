"""Idle upstream keep-alive connections per node address, and the way a request goes out.

A `scheme: https` node's connections are pooled apart (``Node.pool_key`` adds its TLS
settings) and start TLS when created (gateway.worker.tlsio).

Split from upstream.py (module size); see that module's docstring for the pooling rules
(LIFO per node address, bounded by the keepalive pool settings, idle timeout swept).
"""

from __future__ import annotations

from typing import Any

from gateway.worker.response import Responses
from gateway.worker.upstream import UpConn


class UpstreamPool:
    """Idle keep-alive connections per node address (LIFO), and the way requests go out."""

    __slots__ = ("loop", "now", "responses", "server_line", "clock", "show_status", "idle")

    def __init__(self, loop: Any, responses: Responses, show_status: bool = False):
        self.loop = loop
        self.now = loop.now
        self.responses = responses
        self.server_line = responses.server_line
        self.clock = responses.clock
        #: apisix.show_upstream_status_in_response_header (else only for 5xx)
        self.show_status = show_status
        self.idle: dict[tuple, list[UpConn]] = {}

    def forward(self, client: Any, req: Any, target: Any, node: Any, data: bytes,
                attempt: Any = None) -> None:
        """Send ``data`` (the whole upstream request) to ``node`` for ``client``'s ``req``
        (``attempt``: the retry state of a request whose earlier try failed)."""
        idle = self.idle.get(node.pool_key)
        if idle:
            up = idle.pop()
            up.pooled = False
            up.reused = True
        else:
            up = UpConn(self, node)
            if node.tls is not None:
                up.start_tls(req)
        up.begin(client, req, target, data, attempt)

    def discard(self, up: UpConn) -> None:
        idle = self.idle.get(up.addr)
        if idle is not None:
            try:
                idle.remove(up)
            except ValueError:
                pass

    def sweep(self, now: float) -> None:
        """Close idle connections past their idle timeout."""
        for idle in list(self.idle.values()):
            for up in [u for u in idle if now - u.t_idle > u.idle_timeout]:
                up.close()

    def close_idle(self) -> None:
        for idle in list(self.idle.values()):
            for up in list(idle):
                up.close()

    def close_all(self) -> None:
        self.close_idle()

    @property
    def idle_count(self) -> int:
        return sum(len(v) for v in self.idle.values())
