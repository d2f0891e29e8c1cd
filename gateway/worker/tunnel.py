"""The byte pipe behind an upgraded connection (WebSocket, after the upstream's 101).

Once the 101 head went to the client, neither side speaks HTTP any more: bytes read from
one socket are sent to the other as they are. Same I/O model as the rest of the data path
(persistent watchers, no greenlet): the tunnel takes over the four watchers the client and
upstream connections already own, each used by exactly one direction. A direction whose
destination cannot take more stops reading its source until it drained (back-pressure both
ways, at most one read held per direction). When either side closes or fails, both are
closed and the request is logged (status 101). Idle tunnels end after the route's read
timeout (nginx's proxy_read_timeout), checked by the once-a-second sweep.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.core.log import log

if TYPE_CHECKING:
    from gateway.worker.http import Client
    from gateway.worker.upstream import UpConn

RECV_SIZE = 65536


class _Direction:
    """Bytes from ``src`` to ``dst``; ``pending`` is what ``dst`` has not taken yet."""

    __slots__ = ("tunnel", "src", "dst", "src_rw", "dst_ww", "pending")

    def __init__(self, tunnel: Tunnel, src: Any, dst: Any, src_rw: Any, dst_ww: Any):
        self.tunnel = tunnel
        self.src = src
        self.dst = dst
        self.src_rw = src_rw
        self.dst_ww = dst_ww
        self.pending: memoryview | None = None

    def start(self, first: bytes) -> None:
        if first:
            self.send(first)
        if self.pending is None and not self.tunnel.closed:
            self.src_rw.start(self.on_readable)

    def on_readable(self) -> None:
        try:
            try:
                data = self.src.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self.tunnel.end()
                return
            self.tunnel.t_last = self.tunnel.now()
            if self.send(data):
                self.src_rw.stop()
        except Exception:  # noqa: BLE001 - a tunnel's bug ends only that tunnel
            log.exception("unexpected error in a tunnel")
            self.tunnel.end()

    def send(self, data: bytes) -> bool:
        """Send what ``dst`` takes; True when some is left pending (src must wait)."""
        try:
            n = self.dst.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self.tunnel.end()
            return False
        if n == len(data):
            return False
        self.pending = memoryview(data)[n:]
        self.dst_ww.start(self.on_writable)
        return True

    def on_writable(self) -> None:
        try:
            try:
                n = self.dst.send(self.pending)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.tunnel.end()
                return
            self.tunnel.t_last = self.tunnel.now()
            self.pending = self.pending[n:]
            if not self.pending:
                self.pending = None
                self.dst_ww.stop()
                if not self.tunnel.closed:
                    self.src_rw.start(self.on_readable)
        except Exception:  # noqa: BLE001
            log.exception("unexpected error in a tunnel")
            self.tunnel.end()


class Tunnel:
    """Both directions of one upgraded client connection and its upstream connection."""

    __slots__ = ("client", "up", "now", "t_last", "timeout", "closed", "up_down", "down_up")

    def __init__(self, client: Client, up: UpConn, from_client: bytes, from_up: bytes):
        self.client = client
        self.up = up
        self.now = client.server.now
        self.t_last = self.now()
        self.timeout = up.target.timeout.read
        self.closed = False
        for watcher in (client.rw, client.ww, up.rw, up.ww):
            watcher.stop()
        # what the client side had not sent yet (the 101 head, maybe more) goes first
        to_client = from_up
        if client.wbuf is not None:
            to_client = b"".join((*client.wbuf, from_up))
            client.wbuf = None
        client.tunnel = self
        self.down_up = _Direction(self, client.sock, up.sock, client.rw, up.ww)
        self.up_down = _Direction(self, up.sock, client.sock, up.rw, client.ww)
        self.up_down.start(to_client)
        if not self.closed:
            self.down_up.start(from_client)

    def check(self, now: float) -> None:
        """Idle deadline (the sweep calls it through the client's check)."""
        if now - self.t_last > self.timeout:
            self.end()

    def end(self) -> None:
        """One side closed, failed or idled out: close both and log the request."""
        if self.closed:
            return
        self.closed = True
        client = self.client
        up = self.up
        client.tunnel = None
        req = client.active
        if req is not None:
            req.up_status = 101
            req.up_time = self.now() - up.t_begin
            client.finish(req, 101, False)  # logs it, then closes (taking `up` along)
        if not client.closed:
            client.close()
        up.close()
