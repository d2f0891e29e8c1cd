"""The worker's HTTP server object: listeners, accepting, settings, the deadline sweep.

Split from http.py (module size); the connection itself, :class:`Client`, lives there.
Accepting is a persistent ``loop.io`` watcher per listener, accepting until EAGAIN
(bounded per wakeup) and pausing while ``worker_connections`` are in use.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import gevent

from gateway.core.log import AccessLog, log
from gateway.worker.forwarding import trust_test
from gateway.worker.http import Client
from gateway.worker.pool import UpstreamPool
from gateway.worker.response import CRLF, Clock, Responses
from gateway.worker.table import Table, duration, setting, size
from gateway.worker.tls import listener_context
from gateway.worker.tlsio import TlsClient

ACCEPTS_PER_WAKEUP = 64


class _Listener:
    """A listening socket; a TLS one (``context`` set) accepts :class:`TlsClient`s, so the
    plain/TLS choice is made once per connection, never per request."""

    __slots__ = ("sock", "port", "fwd_tail", "watcher", "context", "client_class")

    def __init__(self, sock: socket.socket, context: ssl.SSLContext | None = None):
        self.sock = sock
        name = sock.getsockname()
        self.port = b"%d" % name[1] if isinstance(name, tuple) else b"80"
        proto = b"http" if context is None else b"https"
        self.fwd_tail = b"X-Forwarded-Proto: " + proto + b"\r\nX-Forwarded-Port: " \
            + self.port + CRLF
        self.watcher = None
        self.context = context
        self.client_class = Client if context is None else TlsClient


class HttpServer:
    """Serves HTTP on inherited listening sockets from the current gevent hub's loop.

    The worker creates it, assigns :attr:`table` whenever a new config snapshot is compiled
    (a request keeps the table it was routed with), calls :meth:`start`, calls
    :meth:`sweep` from a 1 s loop timer, and :meth:`stop_accepting` + :meth:`close_idle`
    on a graceful stop (then :meth:`close_all` when the grace period ends).
    """

    def __init__(self, listeners: Iterable[Any], conf: dict[str, Any],
                 access_log: AccessLog | None, tls_listeners: Iterable[Any] = ()):
        self.conf = conf
        self.access_log = access_log
        self.table: Table = Table.empty()
        hub = gevent.get_hub()
        self.loop = hub.loop
        self.now = self.loop.now
        self.clock = Clock()
        self.responses = Responses(conf, self.clock)
        http = ("nginx_config", "http")
        self.keepalive_timeout = duration(setting(conf, *http, "keepalive_timeout"), 60.0)
        self.header_timeout = duration(setting(conf, *http, "client_header_timeout"), 60.0)
        self.body_timeout = duration(setting(conf, *http, "client_body_timeout"), 60.0)
        self.send_timeout = duration(setting(conf, *http, "send_timeout"), 10.0)
        self.max_body = size(setting(conf, *http, "client_max_body_size"), 0)
        self.max_line, self.max_head = _header_limits(
            setting(conf, *http, "large_client_header_buffers"))
        self.trusted = trust_test(setting(conf, "apisix", "trusted_addresses"))
        self.max_connections = int(setting(conf, "nginx_config", "event", "worker_connections",
                                           default=10620))
        self.pool = UpstreamPool(self.loop, self.responses, bool(
            setting(conf, "apisix", "show_upstream_status_in_response_header",
                    default=False)))
        self.clients: set[Client] = set()
        self.listeners = [_Listener(_raw_listener(s)) for s in listeners]
        tls_listeners = list(tls_listeners)
        if tls_listeners:
            # one context for every TLS listener: its SNI callback picks the certificate
            # from the table being served (gateway.worker.tls)
            context = listener_context(conf, lambda: self.table.certs)
            self.listeners += [_Listener(_raw_listener(s), context) for s in tls_listeners]
        self.accepting = False   # accept watchers running
        self.stopped = False     # stop_accepting() was called: never resume
        self.draining = False
        #: connections accepted and requests of closed connections (metrics' gauges)
        self.accepted = 0
        self.requests_done = 0

    # ---- lifecycle
    def start(self) -> None:
        for lst in self.listeners:
            lst.watcher = self.loop.io(lst.sock.fileno(), 1)
        self._resume_accept()

    def stop_accepting(self) -> None:
        self.stopped = True
        self._pause_accept()

    @property
    def connections(self) -> int:
        return len(self.clients)

    def close_idle(self) -> None:
        """Graceful drain: idle keep-alive connections close now, busy ones after their
        current response (which carries ``Connection: close`` when not yet started)."""
        self.draining = True
        for client in list(self.clients):
            client.drain()
        self.pool.close_idle()

    def close_all(self) -> None:
        """Fast stop: drop every connection (in-flight requests are logged as 499) and
        close our copies of the listening sockets."""
        self.stop_accepting()
        for lst in self.listeners:
            lst.sock.close()
        for client in list(self.clients):
            client.abort()
        self.pool.close_all()
        if self.access_log is not None:
            self.access_log.flush()

    def sweep(self, now: float | None = None) -> None:
        """Per-connection deadlines; call about once a second (a loop timer).

        Deadlines are stamped with the loop's cached clock (``loop.now()``, free on the
        hot path), so they are compared against that clock too: ``now`` is accepted for
        the timer's convenience but not used (a ``time.monotonic()`` value would not be
        comparable).
        """
        now = self.now()
        self.clock.tick(now)
        for client in list(self.clients):
            if not client.closed:
                try:
                    client.check(now)
                except Exception:  # noqa: BLE001
                    client.crashed()
        self.pool.sweep(now)

    # ---- accepting
    def _resume_accept(self) -> None:
        if self.accepting or self.stopped:
            return
        self.accepting = True
        for lst in self.listeners:
            lst.watcher.start(self._on_accept, lst)

    def _pause_accept(self) -> None:
        if not self.accepting:
            return
        self.accepting = False
        for lst in self.listeners:
            if lst.watcher is not None:
                lst.watcher.stop()

    def _on_accept(self, lst: _Listener) -> None:
        sock = lst.sock
        clients = self.clients
        for _ in range(ACCEPTS_PER_WAKEUP):
            if len(clients) >= self.max_connections:
                log.warning("%d worker_connections are not enough", self.max_connections)
                self._pause_accept()
                return
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE, ECONNABORTED...: try again on the next wakeup
                log.error("accept() failed: %s", e)
                return
            try:
                conn.setblocking(False)
                if conn.family != socket.AF_UNIX:
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                remote = addr[0].encode() if isinstance(addr, tuple) else b"unix:"
                clients.add(lst.client_class(self, conn, remote, lst))
                self.accepted += 1
            except Exception:  # noqa: BLE001
                log.exception("failed to set up an accepted connection")
                conn.close()

    def forget(self, client: Client) -> None:
        self.clients.discard(client)
        self.requests_done += client.nreq
        if not self.accepting and not self.stopped \
                and len(self.clients) < self.max_connections:
            self._resume_accept()


def _raw_listener(listener: Any) -> socket.socket:
    """A plain non-blocking stdlib socket on a dup of the listener's fd, whatever wrapper
    the worker holds (gunicorn's TCPSocket, a gevent socket): accept must not go through
    gevent's cooperative socket layer, and closing ours must not close the worker's."""
    sock = socket.socket(fileno=os.dup(listener.fileno()))
    sock.setblocking(False)
    return sock


def _header_limits(value: Any) -> tuple[int, int]:
    """nginx ``large_client_header_buffers N SIZE`` → (request line limit, head limit);
    4 × 8k when unset or unreadable, as nginx."""
    number, each = 4, 8192
    if value is not None:
        parts = str(value).split()
        if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) > 0:
            try:
                number, each = int(parts[0]), size(parts[1], 8192)
            except Exception:  # noqa: BLE001 - the loader validates it; keep nginx's default
                log.error("invalid large_client_header_buffers %r, using 4 8k", value)
    return each, number * each
