"""The worker's HTTP/1.x server: accept, parse, route, hand to the upstream side, log.

Why it looks like this (DESIGN.md "Decisions already measured"): a greenlet per connection
and gevent sockets cost more than 2× in throughput, so the data path is callback code on
persistent libev watchers of the gevent hub loop:

* one ``loop.io(fd, READ)`` accept watcher per listener, accepting until EAGAIN (bounded);
* one :class:`Client` per connection (``__slots__``) whose read watcher is started at accept
  and never stopped in steady state (stopping/starting costs two ``epoll_ctl`` per request);
  a write watcher only while a send was partial;
* httptools' ``HttpRequestParser`` is fed from the readiness callback; its protocol object,
  :class:`Request`, is also the per-request ctx — no per-request allocation unless requests
  are pipelined (then the in-flight one is detached into a copy);
* deadlines are fields compared by :meth:`HttpServer.sweep` once a second — no
  ``gevent.Timeout`` per request.

Every callback is wrapped: an unexpected exception is logged and closes only its connection
(with a 500 when nothing was sent yet). A malformed request gets 400, an oversized request
line 414, oversized headers 400 (nginx's "Request Header Or Cookie Too Large"), an oversized
body 413; each then closes the connection after a short lingering read, as nginx does.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from collections.abc import Iterable
from typing import Any

import gevent
from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

from gateway.core.log import AccessLog, log
from gateway.worker.request import HEAD, XFH, Reject, Request
from gateway.worker.response import CRLF, NOT_FOUND_ROUTE, Clock, Responses, access_line
from gateway.worker.table import Table, duration, setting, size
from gateway.worker.upstream import UpstreamPool

RECV_SIZE = 65536
ACCEPTS_PER_WAKEUP = 64
#: pipelined requests queued per connection before we stop reading from it
PIPELINE_LIMIT = 32
#: how long a connection is drained after an error response before it is closed
LINGER_SECONDS = 5.0


class Client:
    """One client connection, driven by its watchers' callbacks (no greenlet)."""

    __slots__ = ("server", "sock", "rw", "ww", "remote", "port", "xri", "fwd", "fwd_tail",
                 "fwd_key", "fwd_block",
                 "parser", "req", "pstate", "head_bytes", "active", "queue", "wbuf",
                 "t_write", "t_read", "t_mark", "closing", "closed", "lingering", "up",
                 "paused_up", "nreq", "no_keep", "read_paused", "pending_error")

    def __init__(self, server: HttpServer, sock: socket.socket, remote: bytes,
                 listener: _Listener):
        self.server = server
        self.sock = sock
        self.remote = remote
        self.port = listener.port
        self.xri = b"X-Real-IP: " + remote + CRLF
        self.fwd = self.xri + b"X-Forwarded-For: " + remote + CRLF
        self.fwd_tail = listener.fwd_tail
        self.fwd_key: bytes | None = b"\x00"  # never a Host value: llhttp refuses NUL
        self.fwd_block = b""
        self.req = Request(self)
        self.parser = HttpRequestParser(self.req)
        self.pstate = 0          # 0 between requests, 1 in the head, 2 in the body
        self.head_bytes = 0
        self.active: Request | None = None
        self.queue: deque[Request] | None = None
        self.wbuf: deque | None = None
        self.t_mark = self.t_read = self.t_write = server.now()
        self.closing = False
        self.closed = False
        self.lingering = False
        self.up = None
        self.paused_up = None
        self.nreq = 0
        self.no_keep = server.draining
        self.read_paused = False
        self.pending_error = 0
        fd = sock.fileno()
        loop = server.loop
        self.rw = loop.io(fd, 1)
        self.ww = loop.io(fd, 2)
        self.rw.start(self.on_readable)

    # ------------------------------------------------------------------ reading
    def on_readable(self) -> None:
        try:
            try:
                data = self.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.abort()
                return
            if not data:
                self.abort()
                return
            # bytes read since the read in which the current head began: an upper bound
            # of the head size (it may include body or earlier pipelined bytes), checked
            # precisely at headers-complete only when it exceeds the limit
            if self.pstate == 1:
                self.head_bytes += len(data)
            else:
                self.head_bytes = len(data)
            try:
                self.parser.feed_data(data)
            except (HttpParserError, HttpParserUpgrade) as e:
                self.parse_failed(e, data)
            pstate = self.pstate
            if pstate == 2:
                self.t_read = self.server.now()
            elif pstate == 1 and self.head_bytes > self.server.max_head + RECV_SIZE:
                self.reject(400)  # an unfinished head this large is over the limit anyway
        except Exception:  # noqa: BLE001 - one connection's bug must not kill the worker
            self.crashed()

    def feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except (HttpParserError, HttpParserUpgrade) as e:
            self.parse_failed(e, data)

    def parse_failed(self, e: Exception, data: bytes) -> None:
        """The parser stopped: an Upgrade request, our Reject, bad bytes, or a bug."""
        if isinstance(e, HttpParserUpgrade):
            # Upgrade (WebSocket) is not proxied yet: the request went out as plain HTTP
            # without the hop-by-hop Upgrade header; go on parsing what follows it
            offset = e.args[0] if e.args else len(data)
            if offset < len(data) and not self.closed:
                self.feed(data[offset:])
            return
        cause = e.__context__
        if isinstance(cause, Reject):
            self.reject(cause.status)
        elif cause is None or isinstance(cause, HttpParserError):
            self.reject(400)
        elif self.active is not None and self.active is not self.req:
            # our bug, in a request pipelined behind one in flight: that one is answered
            # first, then this one gets the 500
            log.error("unexpected error on client connection %s", self.remote.decode(),
                      exc_info=cause)
            self.reject(500)
        else:
            raise cause from None  # → crashed()

    def on_request(self, req: Request) -> None:
        """A complete request: start it now, or queue it behind the one in flight."""
        if self.closing:
            return
        if self.active is not None or self.queue:
            if self.queue is None:
                self.queue = deque()
            self.queue.append(req.copy())
            if len(self.queue) >= PIPELINE_LIMIT and not self.read_paused:
                self.read_paused = True
                self.rw.stop()
            return
        self.start(req)

    def forward_block(self, req: Request) -> bytes:
        """X-Real-IP + X-Forwarded-For/Host/Proto/Port for a request without client
        forwarding headers, cached for the connection's Host value (it rarely changes)."""
        block = self.fwd
        if req.host:
            block += XFH + req.host + CRLF
        block += self.fwd_tail
        self.fwd_key = req.host_hdr
        self.fwd_block = block
        return block

    def detach(self) -> None:
        """The in-flight request must not see the next one's fields: move it to a copy."""
        twin = self.active.copy()
        self.active = twin
        if self.up is not None:
            self.up.req = twin

    def start(self, req: Request) -> None:
        self.active = req
        self.nreq += 1
        target = req.target
        if target is None:
            self.respond(req, 404, NOT_FOUND_ROUTE)
            return
        if target.error:
            self.respond(req, target.error)
            return
        node = target.upstream.balancer.pick(req)
        if node is None:
            self.respond(req, 502)
            return
        self.server.pool.forward(self, req, target, node, req.upstream_request(target, node))

    # ------------------------------------------------------------------ answering
    def respond(self, req: Request, status: int, body: bytes | None = None,
                content_type: bytes | None = None, extra: bytes = b"") -> None:
        """A response the gateway makes itself, for the active request."""
        keep = req.keep and not self.no_keep
        responses = self.server.responses
        head, rest, page = responses.parts(status, keep, body, content_type, extra)
        if req.method == HEAD:
            self.write(head + responses.clock.date_line + rest)
        else:
            req.sent = len(page)
            self.write(b"".join((head, responses.clock.date_line, rest, page)))
        if not self.closed:
            self.finish(req, status, keep)

    def finish(self, req: Request, status: int, keep: bool, now: float | None = None) -> None:
        """The response for ``req`` is written (or queued): log it, then next request."""
        server = self.server
        if now is None:
            now = server.now()
        if server.access_log is not None:
            self.log_access(req, status, now)
        self.active = None
        self.t_mark = now
        if self.closed:
            return
        if not keep or self.no_keep or self.pending_error:
            if self.pending_error:
                self.reject(self.pending_error)
            else:
                self.close_after_flush()
            return
        queue = self.queue
        if queue:
            nxt = queue.popleft()
            if self.read_paused and len(queue) < PIPELINE_LIMIT // 2:
                self.read_paused = False
                self.rw.start(self.on_readable)
            self.start(nxt)

    def log_access(self, req: Request, status: int, now: float) -> None:
        try:
            self.server.access_log.write(access_line(self, req, status, now))
        except Exception:  # noqa: BLE001 - a log line must never break a connection
            log.exception("cannot write the access log line")

    def reject(self, status: int) -> None:
        """Bad request bytes: answer ``status`` after what is in flight, then close."""
        if self.closing or self.closed:
            return
        if self.active is not None:
            self.pending_error = status
            self.queue = None
            if not self.read_paused:
                self.read_paused = True
                self.rw.stop()
            return
        req = self.req
        req.keep = False
        self.queue = None
        self.no_keep = True
        responses = self.server.responses
        head, rest, page = responses.parts(status, False)
        req.sent = len(page)
        self.write(b"".join((head, responses.clock.date_line, rest, page)))
        if self.server.access_log is not None and req.url is not None:
            self.log_access(req, status, self.server.now())
        self.close_after_flush(linger=True)

    def crashed(self) -> None:
        """An unexpected exception in one of our callbacks: log it, answer 500 when no byte
        of the current response went out yet, and close this connection (only this one)."""
        log.exception("unexpected error on client connection %s", self.remote.decode())
        try:
            up = self.up
            if up is not None:
                started = up.sent_head  # a whole response is written in one go
                up.close()
            else:
                # no upstream exchange: we failed while parsing, routing or answering
                # locally, and a local answer is written whole by respond() (whose log
                # line cannot raise), so nothing of it went out yet
                started = self.active is None and self.pstate == 0
            if started or self.closing or self.closed:
                self.abort()
                return
            self.queue = None
            self.pending_error = 0
            self.no_keep = True
            self.write(self.server.responses.make(500, False))
            self.close_after_flush()
        except Exception:  # noqa: BLE001
            log.exception("error while closing a failed connection")
            self.abort()

    # ------------------------------------------------------------------ writing
    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if self.wbuf is not None:
            self.wbuf.append(data)
            return
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self.abort()
            return
        if n < len(data):
            self.wbuf = deque((memoryview(data)[n:],))
            self.t_write = self.server.now()
            self.ww.start(self.on_writable)
            up = self.up
            if up is not None and self.paused_up is None and not up.complete:
                self.paused_up = up      # back-pressure: stop reading the upstream
                up.pause()

    def on_writable(self) -> None:
        try:
            wbuf = self.wbuf
            while wbuf:
                chunk = wbuf[0]
                try:
                    n = self.sock.send(chunk)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    self.abort()
                    return
                self.t_write = self.server.now()
                if n < len(chunk):
                    wbuf[0] = memoryview(chunk)[n:]
                    return
                wbuf.popleft()
            self.wbuf = None
            self.ww.stop()
            up = self.paused_up
            if up is not None:
                self.paused_up = None
                up.resume()
            if self.closing:
                self._closing_flushed()
        except Exception:  # noqa: BLE001
            self.crashed()

    # ------------------------------------------------------------------ closing
    def close_after_flush(self, linger: bool = False) -> None:
        self.closing = True
        self.lingering = linger
        if self.wbuf is None:
            self._closing_flushed()

    def _closing_flushed(self) -> None:
        if not self.lingering:
            self.close()
            return
        # lingering close: the client may still be sending a body we refused; reading it
        # for a moment keeps the kernel from resetting the connection under our response
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()
            return
        self.t_mark = self.server.now()
        self.rw.stop()
        self.read_paused = False
        self.rw.start(self._on_linger)

    def _on_linger(self) -> None:
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()

    def abort(self) -> None:
        """The client is gone (EOF, reset, timeout): drop what is in flight."""
        if self.closed:
            return
        active = self.active
        if active is not None and self.up is not None:
            active.up_time = self.server.now() - self.up.t_begin
        self.close()
        if active is not None and self.server.access_log is not None:
            self.log_access(active, 499, self.server.now())
        self.active = None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.closing = True
        self.rw.stop()
        self.ww.stop()
        self.wbuf = None
        self.queue = None
        up = self.up
        if up is not None:  # the response is not complete: that upstream connection is spent
            up.client = None
            self.up = None
            up.close()
        self.paused_up = None
        try:
            self.sock.close()
        except OSError:
            pass
        self.server.forget(self)

    def drain(self) -> None:
        """Graceful stop: close now if idle between requests, else after this response."""
        self.no_keep = True
        if self.active is None and self.pstate == 0 and self.wbuf is None:
            self.close()
        elif self.active is not None:
            self.active.keep = False
            up = self.up
            if up is not None and not up.sent_head:
                up.client_keep = False

    def check(self, now: float) -> None:
        """Deadlines, called once a second by the sweep."""
        server = self.server
        if self.wbuf is not None:
            if now - self.t_write > server.send_timeout:
                self.abort()  # nginx: client timed out while sending; just close
            return
        if self.lingering:
            if now - self.t_mark > LINGER_SECONDS:
                self.close()
            return
        if self.active is not None:
            if self.up is not None:
                self.up.check(now)
            return
        if self.pstate == 2:
            if now - self.t_read > server.body_timeout:
                self.reject(408)
        elif self.pstate == 1:
            if now - self.req.t_start > server.header_timeout:
                self.abort()  # nginx closes without a response
        elif now - self.t_mark > (server.keepalive_timeout if self.nreq
                                  else server.header_timeout):
            self.close()


# ---------------------------------------------------------------------- server
class _Listener:
    __slots__ = ("sock", "port", "fwd_tail", "watcher")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        name = sock.getsockname()
        self.port = b"%d" % name[1] if isinstance(name, tuple) else b"80"
        self.fwd_tail = b"X-Forwarded-Proto: http\r\nX-Forwarded-Port: " + self.port + CRLF
        self.watcher = None


class HttpServer:
    """Serves HTTP on inherited listening sockets from the current gevent hub's loop.

    The worker creates it, assigns :attr:`table` whenever a new config snapshot is compiled
    (a request keeps the table it was routed with), calls :meth:`start`, calls
    :meth:`sweep` from a 1 s loop timer, and :meth:`stop_accepting` + :meth:`close_idle`
    on a graceful stop (then :meth:`close_all` when the grace period ends).
    """

    def __init__(self, listeners: Iterable[Any], conf: dict[str, Any],
                 access_log: AccessLog | None):
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
        self.max_connections = int(setting(conf, "nginx_config", "event", "worker_connections",
                                           default=10620))
        self.pool = UpstreamPool(self.loop, self.responses, bool(
            setting(conf, "apisix", "show_upstream_status_in_response_header",
                    default=False)))
        self.clients: set[Client] = set()
        self.listeners = [_Listener(_raw_listener(s)) for s in listeners]
        self.accepting = False   # accept watchers running
        self.stopped = False     # stop_accepting() was called: never resume
        self.draining = False

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
                clients.add(Client(self, conn, remote, lst))
            except Exception:  # noqa: BLE001
                log.exception("failed to set up an accepted connection")
                conn.close()

    def forget(self, client: Client) -> None:
        self.clients.discard(client)
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
