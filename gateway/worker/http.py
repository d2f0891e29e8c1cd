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

A request body that is not complete in the read that carried its head is streamed: the
head (and the body so far) goes upstream as soon as the request is routed, then each piece
as it is parsed, with the client's read watcher stopped while the upstream has not taken
the previous one (bounded memory). Behind a request in flight, such a request waits with
reading stopped. ``client_max_body_size`` is enforced up front (Content-Length) and while
streaming (the upstream exchange is dropped and 413 answered if no response byte went out).
"""

from __future__ import annotations

import socket
from collections import deque
from typing import TYPE_CHECKING

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

from gateway.core.log import log
from gateway.worker import plugin_runner
from gateway.worker.request import STREAM_OPEN, STREAM_WANTED, XFH, Reject, Request
from gateway.worker.response import CRLF, CRLF2, HEAD, NOT_FOUND_ROUTE, access_entry
from gateway.worker.tunnel import Tunnel

if TYPE_CHECKING:
    from gateway.worker.server import HttpServer, _Listener

RECV_SIZE = 65536
#: pipelined requests queued per connection before we stop reading from it
PIPELINE_LIMIT = 32
#: during a graceful stop, how long a new connection may take to send its first request
DRAIN_GRACE = 2.0
#: how long a connection is drained after an error response before it is closed
LINGER_SECONDS = 5.0


class Client:
    """One client connection, driven by its watchers' callbacks (no greenlet)."""

    __slots__ = ("server", "sock", "rw", "ww", "remote", "port", "xri", "fwd", "fwd_tail",
                 "fwd_key", "fwd_block",
                 "parser", "req", "pstate", "head_bytes", "active", "queue", "wbuf",
                 "t_write", "t_read", "t_mark", "closing", "closed", "lingering", "up",
                 "paused_up", "nreq", "no_keep", "read_paused", "pending_error", "body_wait",
                 "trusted", "tunnel", "early", "last_fields", "last_block")

    #: the ``scheme`` variable and the default X-Forwarded-Proto (TlsClient: https)
    scheme = "http"
    proto = b"http"

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
        self.body_wait = False   # reading paused: the upstream has not taken the body yet
        self.trusted = server.trusted(remote)  # keep its X-Forwarded-* (trusted_addresses)
        self.tunnel: Tunnel | None = None   # after a 101: the byte pipe owns the watchers
        self.early = b""   # bytes after an Upgrade request's head, for the tunnel
        #: the header block of the last request Request.whole parsed, and what it gave
        self.last_fields: bytes | None = None
        self.last_block = None
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
            pstate = self.pstate
            if pstate == 1:
                self.head_bytes += len(data)
            else:
                self.head_bytes = len(data)
                req = self.req
                # between requests (never in a body), a whole bodiless request, after a
                # kept-alive one (llhttp refuses what follows a request that closes)
                if pstate == 0 and data[-4:] == CRLF2 and (req.keep or req.url is None):
                    try:
                        if req.whole(data):
                            return
                    except Reject as e:
                        self.reject(e.status)
                        return
                    except Exception as e:  # noqa: BLE001 - as in a parser callback
                        self.callback_failed(e)
                        return
            try:
                self.parser.feed_data(data)
            except (HttpParserError, HttpParserUpgrade) as e:
                self.parse_failed(e, data)
            pstate = self.pstate
            if pstate == 2:
                self.t_read = self.server.now()
                if self.req.stream == STREAM_WANTED:
                    self.start_stream()
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
            offset = e.args[0] if e.args else len(data)
            active = self.active
            if active is not None and active.upgrade is not None and self.up is not None:
                # an Upgrade on its way to the upstream: what follows is no longer HTTP;
                # keep it for the tunnel and read no more until the upstream answered
                self.early = data[offset:]
                if not self.read_paused:
                    self.read_paused = True
                    self.rw.stop()
                return
            # no tunnel (the route has no enable_websocket): the request went out as plain
            # HTTP without the hop-by-hop Upgrade header; go on parsing what follows it
            if offset < len(data) and not self.closed:
                self.feed(data[offset:])
            return
        cause = e.__context__
        if isinstance(cause, Reject):
            self.reject(cause.status)
        elif cause is None or isinstance(cause, (HttpParserError, HttpParserUpgrade)):
            self.reject(400)  # (after an Upgrade, the bytes that follow it did not parse)
        else:
            self.callback_failed(cause)

    def callback_failed(self, cause: Exception) -> None:
        """Our code raised while a request was parsed (routing, or starting it)."""
        if self.active is not None and self.active is not self.req:
            # our bug, in a request pipelined behind one in flight: that one is answered
            # first, then this one gets the 500
            log.error("unexpected error on client connection %s", self.remote.decode(),
                      exc_info=cause)
            self.reject(500)
        else:
            raise cause from None  # → crashed()

    def start_stream(self) -> None:
        """The body did not come with the head: send the head (and what body there is)
        upstream now and stream the rest, or, behind a request in flight, stop reading
        until it is answered (a queued body would be unbounded memory)."""
        req = self.req
        if self.active is None and not self.queue and not self.closing:
            req.stream = STREAM_OPEN
            self.start(req)
        elif not self.read_paused:
            self.read_paused = True
            self.rw.stop()

    def hold_body(self) -> None:
        """Back-pressure towards the client: the upstream's send buffer is full."""
        if not self.body_wait:
            self.body_wait = True
            self.rw.stop()

    def release_body(self) -> None:
        if self.body_wait:
            self.body_wait = False
            if not self.read_paused and not self.closing and not self.closed:
                self.rw.start(self.on_readable)

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
        if twin.pctx is not None:
            twin.pctx.req = twin

    def start(self, req: Request) -> None:
        self.active = req
        self.nreq += 1
        target = req.target
        if target is None:
            chain = self.server.table.global_chain
            if chain is not None:  # global rules run for unmatched requests too
                plugin_runner.start(self, req, None, chain)
                return
            self.respond(req, 404, NOT_FOUND_ROUTE)
            return
        if target.chain is not None:
            plugin_runner.start(self, req, target, target.chain)
            return
        if target.error:
            self.respond(req, target.error)
            return
        upstream = target.upstream
        node = upstream.single
        if node is None:
            node = upstream.balancer.pick(req)
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
        pctx = req.pctx
        if pctx is not None and pctx.chain.log:
            plugin_runner.log_phase(pctx, status)
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
                if not self.body_wait:
                    self.rw.start(self.on_readable)
            self.start(nxt)
        elif self.pstate == 2 and self.req.stream == STREAM_WANTED:
            # a body request waited behind this one: its turn, and read its body again
            if self.read_paused:
                self.read_paused = False
                if not self.body_wait:
                    self.rw.start(self.on_readable)
            self.start_stream()

    def log_access(self, req: Request, status: int, now: float) -> None:
        try:
            self.server.access_log.write(access_entry(self, req, status, now))
        except Exception:  # noqa: BLE001 - a log line must never break a connection
            log.exception("cannot write the access log line")

    def reject(self, status: int) -> None:
        """Bad request bytes: answer ``status`` after what is in flight, then close."""
        if self.closing or self.closed:
            return
        active = self.active
        if active is not None and active.stream == STREAM_OPEN:
            # the body being streamed went over a limit: drop the upstream exchange and
            # answer, unless its response already started (then only closing is left)
            up = self.up
            if up is not None and up.req is active:
                if up.sent_head:
                    self.abort()
                    return
                self.paused_up = None
                up.close()
            self.active = None
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
        if active is not None and active.pctx is not None:
            # the log phase runs for aborted requests too (as nginx's): limit-conn must
            # give its connection back
            plugin_runner.log_phase(active.pctx, 499)
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
        """Graceful stop: close now if idle between requests, else after this response.

        A connection is only idle when no request bytes are waiting: closing a socket with
        unread data resets it and loses a request the client already sent (the QUIT may be
        handled in the same loop pass as that data's readiness). A connection that has not
        sent its first request yet gets `DRAIN_GRACE` to do so (its bytes may be on the wire).
        """
        self.no_keep = True
        if self.active is None and self.pstate == 0 and self.wbuf is None:
            if self.nreq == 0:
                return                  # check() closes it after DRAIN_GRACE if still silent
            try:
                pending = self.sock.recv(1, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                pending = None
            except OSError:
                pending = b""
            if pending:
                self.on_readable()      # serve it; no_keep closes the connection afterwards
            else:
                self.close()
        elif self.active is not None:
            self.active.keep = False
            up = self.up
            if up is not None and not up.sent_head:
                up.client_keep = False

    def check(self, now: float) -> None:
        """Deadlines, called once a second by the sweep."""
        server = self.server
        if self.tunnel is not None:
            self.tunnel.check(now)
            return
        if self.wbuf is not None:
            if now - self.t_write > server.send_timeout:
                self.abort()  # nginx: client timed out while sending; just close
            return
        if self.lingering:
            if now - self.t_mark > LINGER_SECONDS:
                self.close()
            return
        if self.active is not None:
            if self.pstate == 2 and not self.body_wait and self.active.stream == STREAM_OPEN \
                    and now - self.t_read > server.body_timeout:
                self.abort()  # a streamed body stalled: the upstream got part of it
                return
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
                                  else DRAIN_GRACE if server.draining
                                  else server.header_timeout):
            self.close()
