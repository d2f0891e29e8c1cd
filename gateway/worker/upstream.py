"""Upstream side of the data path: pooled keep-alive connections and response framing.

Same I/O model as the client side (see http.py): raw non-blocking sockets on persistent
loop watchers, no greenlet. Connecting is ``connect_ex`` + a write watcher (never
``gevent.socket.create_connection``, which goes through the resolver thread pool). Each
:class:`UpConn` has a read watcher started at creation and stopped only under back-pressure
(client send buffer full) or at close; it is also how a peer closing an idle pooled
connection is noticed, at no cost.

Idle connections wait in a LIFO list per node address (the most recently used is the most
likely to still be open), bounded by ``nginx_config.http.upstream.keepalive`` (or the
upstream's ``keepalive_pool``), closed after ``keepalive_timeout`` idle or
``keepalive_requests`` uses. A *reused* connection that fails before any response byte is
retried once on a fresh connection when the request is idempotent (the upstream closed it
while our request was on its way) and no body piece was streamed after the first send.

Retries follow APISIX (nginx's ``proxy_next_upstream error timeout``): a try that fails
before the response head arrived (connect error or timeout, reset, early close, send error,
read timeout) moves to another node — the request must not have reached the node already
unless it is idempotent, and its body must be in memory (a streamed body cannot be sent
twice) — up to ``retries`` more tries (default: number of nodes - 1), none started later
than ``retry_timeout`` after the first. Each retry avoids the nodes this request already
tried (a single-node upstream retries its node). When every try failed the client gets the
last status (502, or 504 for a timeout) with ``X-APISIX-Upstream-Status`` listing every
try's status (``502, 502``); 502 when untried nodes ran out first. The retry state
(:class:`_Attempt`) is allocated at the first failure only: nothing per request otherwise.
With health checks, a retried failure is reported to the node's passive counters (TCP
failure, or timeout) and the final status of every response is matched against the passive
status lists.

Request bodies that did not arrive with the head are streamed (:meth:`UpConn.push`): a
piece is sent at once when nothing is pending, else queued while the client's read watcher
is stopped until the socket drained, so at most about one client read is held per request.

Response framing is driven by httptools' ``HttpResponseParser``: a response that completes
within one read goes to the client in one ``send`` with a Content-Length; otherwise the
head is sent first, then body pieces as they arrive (Content-Length passed through, chunked
re-chunked, close-delimited bodies re-chunked for HTTP/1.1 clients and close-delimited for
HTTP/1.0 ones). Responses to HEAD, 1xx, 204 and 304 have no body whatever their headers say.
Interim 1xx responses are dropped (as nginx does); trailers are dropped. A 101 to a
WebSocket request goes to the client, then both connections become a :class:`Tunnel`.
"""

from __future__ import annotations

import errno
import os
import re
import socket
from typing import TYPE_CHECKING, Any

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from gateway.core.log import every, log
from gateway.worker import plugin_runner
from gateway.worker.request import STREAM_OPEN
from gateway.worker.response import (
    COLSP,
    CONN_CLOSE,
    CONN_KEEP,
    CRLF,
    HEAD,
    LAST_CHUNK,
    TE_CHUNKED,
    content_length,
    status_line,
)
from gateway.worker.tlsio import TLSSocket
from gateway.worker.tunnel import Tunnel

if TYPE_CHECKING:
    from gateway.worker.pool import UpstreamPool

RECV_SIZE = 65536
#: methods retried on a fresh connection when a reused one fails before any response byte
IDEMPOTENT = frozenset((b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"))

#: the upstream response headers the client never gets: hop-by-hop ones, the framing ones
#: (the gateway frames the body itself) and those nginx hides (it sets Server and Date)
_DROP = re.compile(rb"^(?:connection|keep-alive|proxy-connection|te|trailer|upgrade|"
                   rb"transfer-encoding|content-length|proxy-authenticate|"
                   rb"proxy-authorization|server|date|x-pad|x-accel-expires|"
                   rb"x-accel-redirect|x-accel-limit-rate|x-accel-buffering|"
                   rb"x-accel-charset)[ \t]*:[^\n]*\n", re.IGNORECASE | re.MULTILINE)
_CL = re.compile(rb"^content-length[ \t]*:[ \t]*([0-9]+)", re.IGNORECASE | re.MULTILINE)
_TE = re.compile(rb"^transfer-encoding[ \t]*:", re.IGNORECASE | re.MULTILINE)
_CONN_CLOSE = re.compile(rb"^connection[ \t]*:[^\n]*close", re.IGNORECASE | re.MULTILINE)
#: ``UpConn.clen`` before the head was searched for a Content-Length
_UNSET = b""
#: what :meth:`UpConn._simple` takes without llhttp: an HTTP/1.1 status line with a final
#: status and header lines of token names and field-value characters (no CR, LF or NUL)
_SIMPLE_STATUS = re.compile(rb"HTTP/1\.1 ([2-5][0-9][0-9])(?: [\t -~\x80-\xff]*)?")
_SIMPLE_FIELDS = re.compile(rb"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t -~\x80-\xff]*\r\n)*")
#: a simple status line -> its code (None: not simple)
_simple_codes: dict[bytes, int | None] = {}


def _split_head(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """(status line, header lines each ending in CRLF, what follows the head) of the
    bytes a response head arrived in (llhttp accepted them: the head is complete)."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:  # bare LF line ends (llhttp's lenient parsing): rewritten with CRLF
        end = raw.find(b"\n\n")
        head = raw[:end].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n\r\n"
        rest = raw[end + 2:]
        end = len(head) - 4
        raw = head
    else:
        rest = raw[end + 4:]
    first = raw.find(b"\r\n")
    return raw[:first], raw[first + 2:end + 2], rest


#: the upstream's status line -> the client's (HTTP/1.1, the reason phrase passed through
#: as nginx does)
_lines: dict[bytes, bytes] = {}


def _client_status(status: bytes, code: int) -> bytes:
    parts = status.split(b" ", 2)
    reason = parts[2].strip() if len(parts) == 3 else b""
    line = status_line(code, reason) if reason else status_line(code)
    if len(_lines) < 256:
        _lines[status] = line
    return line


class _BodyLess(Exception):
    """Raised at headers-complete of a HEAD response: llhttp cannot be told the body is
    absent, so parsing stops there and the parser is replaced (rare path)."""


class _Attempt:
    """The tries of one request, from its first failed try on."""

    __slots__ = ("left", "deadline", "tried", "statuses")

    def __init__(self, left: int, deadline: float):
        self.left = left           # tries still allowed
        self.deadline = deadline   # loop time after which none starts (0: no limit)
        self.tried: set[Any] = set()
        self.statuses = b""        # "502, 504, ": the failed tries, for the header


class UpConn:
    """One upstream connection; also the httptools protocol for its responses."""

    __slots__ = ("pool", "node", "addr", "sock", "rw", "ww", "parser", "connected", "closed",
                 "error", "reused", "pooled", "requests", "t_idle", "idle_timeout",
                 # the exchange in progress
                 "client", "req", "target", "out", "obuf", "t_begin", "t_last", "paused",
                 "oq", "streamed", "attempt",
                 # response framing
                 "raw", "code", "rcode", "status", "fields", "last_fields", "last_kept",
                 "simple_fields", "simple_clen", "simple_keep",
                 "hdrs", "body", "nbody", "clen", "head_done", "sent_head", "complete",
                 "keep", "head_req", "interim", "rechunk", "client_keep", "upgrade")

    def __init__(self, pool: UpstreamPool, node: Any):
        self.pool = pool
        self.node = node
        self.addr = node.pool_key   # the pool's key: the address (+ TLS settings)
        self.connected = False
        self.closed = False
        self.error = 0
        self.reused = False
        self.pooled = False
        self.requests = 0
        self.t_idle = 0.0
        self.idle_timeout = 60.0
        self.client = None
        self.req = None
        self.target = None
        self.obuf = None
        self.oq = None
        self.streamed = False
        self.attempt = None
        self.paused = False
        self.sent_head = False
        self.complete = False
        self.interim = False
        self.keep = False
        self.raw = None
        self.hdrs = None
        self.last_fields = None
        self.last_kept = b""
        self.simple_fields = None
        self.simple_clen = 0
        self.simple_keep = False
        self.parser = HttpResponseParser(self)
        sock = socket.socket(node.family, socket.SOCK_STREAM)
        self.sock = sock
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        fd = sock.fileno()
        self.rw = pool.loop.io(fd, 1)
        self.ww = pool.loop.io(fd, 2)
        err = sock.connect_ex(node.addr)
        if err == 0:
            self.connected = True
        elif err not in (errno.EINPROGRESS, errno.EAGAIN):
            self.error = err
            return
        self.rw.start(self.on_readable)

    def start_tls(self, req: Any) -> None:
        """`scheme: https`: speak TLS over this new connection. SNI is the Host sent
        upstream without its port (nginx's ``proxy_ssl_name $upstream_host``); an IP
        address sends none."""
        host = req.up_host or b""
        if host.startswith(b"["):
            host = host[1:host.find(b"]")]
        elif host.count(b":") == 1:
            host = host.split(b":", 1)[0]
        self.sock = TLSSocket(self.sock, self.node.tls.context, False, self.pool.loop,
                              server_hostname=host.decode("latin-1") or None)

    # ------------------------------------------------------------------ request
    def begin(self, client: Any, req: Any, target: Any, data: bytes,
              attempt: _Attempt | None = None) -> None:
        self.client = client
        self.attempt = attempt
        client.up = self
        self.req = req
        self.target = target
        self.out = data
        self.streamed = False  # (oq is None here: a pooled connection had nothing pending)
        self.t_begin = self.t_last = self.pool.now()
        self.raw = None  # stays None until the first response byte (see fail())
        self.head_done = self.sent_head = self.complete = False
        self.head_req = req.method == HEAD
        # an Upgrade request not answered with 101 ends its connection (nothing after it
        # was parsed as HTTP)
        self.client_keep = req.keep and not client.no_keep and req.upgrade is None
        req.up_addr = self.node.name
        req.up_time = 0.0
        if self.error:
            self.fail(502, "connect() failed (%d: %s) while connecting to upstream"
                      % (self.error, os.strerror(self.error)))
        elif not self.connected:
            self.ww.start(self.on_connected)
        else:
            self.send()

    def on_connected(self) -> None:
        try:
            self.ww.stop()
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.fail(502, "connect() failed (%d: %s) while connecting to upstream"
                          % (err, os.strerror(err)))
                return
            self.connected = True
            self.t_last = self.pool.now()
            if self.client is not None:
                self.send()
        except Exception:  # noqa: BLE001
            self.crashed()

    def send(self) -> None:
        data = self.out
        if self.oq is not None:  # body pieces that came while connecting
            data = b"".join((data, *self.oq))
            self.oq = None
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as e:
            self.fail(502, "send() failed (%d: %s) while sending request to upstream"
                      % (e.errno or 0, e.strerror))
            return
        if n < len(data):
            self.obuf = memoryview(data)[n:]
            self.ww.start(self.on_writable)
            if self.req.stream == STREAM_OPEN:
                self.client.hold_body()
        elif self.client.body_wait:
            self.client.release_body()

    def push(self, data: bytes) -> None:
        """A piece of a streamed request body (framed already). Sent now when nothing is
        pending; else queued, and the client stops reading until it all went out: at most
        about one client read is ever held here."""
        self.streamed = True
        if self.closed:
            return
        if self.obuf is None and self.oq is None and self.connected:
            try:
                n = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as e:
                self.fail(502, "send() failed (%d: %s) while sending request to upstream"
                          % (e.errno or 0, e.strerror))
                return
            if n == len(data):
                return
            self.obuf = memoryview(data)[n:]
            self.t_last = self.pool.now()
            self.ww.start(self.on_writable)
        elif self.oq is None:
            self.oq = [data]
        else:
            self.oq.append(data)
        client = self.client
        if client is not None:
            client.hold_body()

    def body_ended(self) -> None:
        """The streamed request body is complete: the read timeout starts now."""
        self.t_last = self.pool.now()

    def on_writable(self) -> None:
        try:
            try:
                n = self.sock.send(self.obuf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.fail(502, "send() failed (%d: %s) while sending request to upstream"
                          % (e.errno or 0, e.strerror))
                return
            self.t_last = self.pool.now()
            self.obuf = self.obuf[n:]
            if not self.obuf:
                if self.oq is not None:
                    self.obuf = memoryview(b"".join(self.oq))
                    self.oq = None
                    return
                self.obuf = None
                self.ww.stop()
                client = self.client
                if client is not None and client.body_wait:
                    client.release_body()
        except Exception:  # noqa: BLE001
            self.crashed()

    # ------------------------------------------------------------------ response
    def on_readable(self) -> None:
        try:
            try:
                data = self.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                data = None
                err = e
            client = self.client
            if client is None:      # idle: the upstream closed it (or sent junk)
                self.close()
                return
            if data and not self.head_done:
                # the head's bytes, taken as they are by on_headers_complete (no callback
                # per header: the client gets the upstream's header lines filtered)
                raw = self.raw
                if raw is None:
                    if not self.head_req and self._simple(data, client):
                        return
                    self.raw = data
                else:
                    self.raw = raw + data
            if not data:
                if data is None:
                    self.fail(502, ("recv() failed (%d: %s) while reading response header "
                                    "from upstream" if self.connected else
                                    "connect() failed (%d: %s) while connecting to upstream")
                              % (err.errno or 0, err.strerror))
                else:
                    self.on_eof()
                return
            try:
                self.parser.feed_data(data)
            except HttpParserError as e:
                if not isinstance(e.__context__, _BodyLess):
                    self.fail(502, "upstream sent invalid response")
                    return
                self.parser = HttpResponseParser(self)  # stopped on purpose (HEAD)
            except HttpParserUpgrade as e:
                if self.code == 101 and self.req.upgrade is not None:
                    offset = e.args[0] if e.args else len(data)
                    self.upgraded(data[offset:])
                    return
                self.fail(502, "upstream sent an unexpected protocol upgrade")
                return
            if self.complete:
                out = self._pieces(True) if self.sent_head else self._whole()
            else:
                self.t_last = self.pool.now()  # read timeout: time between two reads
                if not self.head_done:
                    return
                out = self._pieces(False)
            if out is not None:
                client.write(out)
                if self.client is None:   # the client went away while we wrote
                    return
            if self.complete:
                self.done()
        except Exception:  # noqa: BLE001
            self.crashed()

    def _simple(self, data: bytes, client: Any) -> bool:
        """The usual response, whole in its first read: an HTTP/1.1 final status, one
        Content-Length and exactly that many body bytes, no Transfer-Encoding. Framed
        here without llhttp's callbacks (True); anything else is left to llhttp (False,
        nothing consumed). A connection's heads repeat (the Date changes once a second):
        a header block seen before is not checked again."""
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return False
        first = data.find(b"\r\n")
        status = data[:first]
        code = _simple_codes.get(status, 0)
        if code == 0:
            found = _SIMPLE_STATUS.fullmatch(status)
            code = int(found.group(1)) if found is not None else None
            if code == 204 or code == 304:
                code = None
            if len(_simple_codes) < 256:
                _simple_codes[status] = code
        if code is None:
            return False
        fields = data[first + 2:end + 2]
        if fields != self.simple_fields:
            if _SIMPLE_FIELDS.fullmatch(fields) is None or _TE.search(fields) is not None:
                return False
            lengths = _CL.findall(fields)
            if len(lengths) != 1:
                return False
            self.simple_fields = fields
            self.simple_clen = int(lengths[0])
            self.simple_keep = _CONN_CLOSE.search(fields) is None
        if len(data) - end - 4 != self.simple_clen:
            return False   # more to come (or more than announced): llhttp's case
        self.code = self.rcode = code
        self.status = status
        self.fields = fields
        self.clen = _UNSET
        self.hdrs = None
        self.nbody = self.simple_clen
        self.rechunk = False
        self.keep = self.simple_keep
        self.head_done = self.complete = True
        if self.req.stream == STREAM_OPEN:
            self.client_keep = False
        client.write(self._whole(data[end + 4:]))
        if self.client is not None:   # (None: the client went away while we wrote)
            self.done()
        return True

    def on_message_begin(self) -> None:
        self.hdrs = None
        self.body = []
        self.nbody = 0
        self.rechunk = False

    def on_headers_complete(self) -> None:
        code = self.parser.get_status_code()
        status, fields, rest = _split_head(self.raw)
        if code < 200 and code != 101:
            # 100/102/103: not forwarded (nginx neither); the real response follows
            self.interim = True
            self.raw = rest
            return
        self.raw = None
        self.code = self.rcode = code
        self.status = status
        self.fields = fields
        self.clen = _UNSET
        self.head_done = True
        if self.req.stream == STREAM_OPEN:
            self.client_keep = False  # answered mid-body: the rest is not worth reading
        if self.head_req:
            self.keep = _CONN_CLOSE.search(fields) is None \
                and self.parser.get_http_version() == "1.1"
            self.complete = True
            raise _BodyLess

    def on_body(self, data: bytes) -> None:
        self.body.append(data)
        self.nbody += len(data)

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self.keep = self.parser.should_keep_alive()
        self.complete = True

    # ------------------------------------------------------------------ the client's head
    def kept_headers(self) -> bytes:
        """The upstream's header lines the client gets (``Name: value\\r\\n`` each). A
        connection's responses usually repeat the previous head byte for byte (Date
        changes once a second), so the filtered block is reused."""
        fields = self.fields
        if fields == self.last_fields:
            return self.last_kept
        kept = _DROP.sub(b"", fields)
        self.last_fields = fields
        self.last_kept = kept
        return kept

    def headers_flat(self) -> list[bytes]:
        """The kept headers as ``[name, ": ", value, CRLF, ...]`` (for plugins)."""
        flat: list[bytes] = []
        for line in self.kept_headers().split(CRLF):
            if line:
                name, _, value = line.partition(b":")
                flat += (name, COLSP, value.strip(b" \t"), CRLF)
        return flat

    def content_length(self) -> bytes | None:
        """The upstream's Content-Length value (None: none), searched for when needed."""
        clen = self.clen
        if clen is _UNSET:
            found = _CL.search(self.fields)
            clen = self.clen = found.group(1) if found is not None else None
        return clen

    def _head(self) -> list[bytes]:
        pool = self.pool
        pctx = self.req.pctx
        if pctx is not None and (pctx.chain.response or pctx.has_response_edits):
            plugin_runner.response_head(self)  # plugins' header_filter: code, hdrs, clen
        code = self.code
        parts = [self._status_line() if code == self.rcode else status_line(code),
                 pool.server_line, pool.clock.date_line]
        hdrs = self.hdrs
        if hdrs is None:
            parts.append(self.kept_headers())
        else:
            parts += hdrs
        if code >= 500 or pool.show_status:
            attempt = self.attempt
            parts.append(b"X-APISIX-Upstream-Status: %s%d\r\n"
                         % (attempt.statuses if attempt is not None else b"", code))
        return parts

    def _status_line(self) -> bytes:
        """The client's status line for the upstream's (its reason phrase passed through)."""
        line = _lines.get(self.status)
        return line if line is not None else _client_status(self.status, self.code)

    def _whole(self, body: bytes | None = None) -> bytes:
        """The complete response in one buffer (it arrived within one read; ``body``: the
        body when the caller has it in one piece, else ``self.body``)."""
        code = self.code
        if self.head_req or code == 204 or code == 304:
            parts = self._head()
            clen = self.content_length()
            if clen is not None and code != 204:
                parts += (b"Content-Length: ", clen, CRLF)
            body = b""
        else:
            if body is None:
                chunks = self.body
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            pool = self.pool
            pctx = self.req.pctx
            if code < 500 and not pool.show_status and (pctx is None or not pctx.chain.response):
                # the usual response, in one join: no plugin sees it, no status header, at
                # most one pending header block (limit-count's quota headers)
                kept = self.kept_headers()
                block = b"" if pctx is None else plugin_runner.plain_block(pctx, kept, code)
                if block is not None:
                    return b"".join((self._status_line(), pool.server_line,
                                     pool.clock.date_line, kept, block,
                                     content_length(len(body)),
                                     CONN_KEEP if self.client_keep else CONN_CLOSE, CRLF, body))
            parts = self._head()
            if pctx is not None and pctx.chain.body_filter:
                body = plugin_runner.response_body(self, body)  # plugins' body_filter
            parts.append(content_length(len(body)))
        parts.append(CONN_KEEP if self.client_keep else CONN_CLOSE)
        parts.append(CRLF)
        if body:
            parts.append(body)
        return b"".join(parts)

    def _pieces(self, last: bool) -> bytes | None:
        """Head (once), then the body pieces parsed so far, framed for the client."""
        out: list[bytes]
        if not self.sent_head:
            self.sent_head = True
            out = self._head()
            clen = self.content_length()
            if clen is not None:
                out += (b"Content-Length: ", clen, CRLF)
            elif self.req.minor == 1:
                out.append(TE_CHUNKED)
                self.rechunk = True
            else:
                self.client_keep = False  # HTTP/1.0 client: the close delimits the body
            out += (CONN_KEEP if self.client_keep else CONN_CLOSE, CRLF)
        else:
            out = []
        body = self.body
        if self.req.pctx is not None:
            body = plugin_runner.response_pieces(self, body, last)  # plugins' body_filter
        if body:
            if self.rechunk:
                for piece in body:
                    out += (b"%x\r\n" % len(piece), piece, CRLF)
            else:
                out += body
            self.body = []
        if last and self.rechunk:
            out.append(LAST_CHUNK)
        return b"".join(out) if out else None

    def upgraded(self, rest: bytes) -> None:
        """101: the 101 head to the client, then both connections become a byte pipe
        (``rest``: what the upstream sent after its head)."""
        client = self.client
        self.sent_head = True
        parts = self._head()
        parts += (b"Upgrade: ", self.req.upgrade, CRLF, b"Connection: upgrade\r\n\r\n")
        early = client.early
        client.early = b""
        client.write(b"".join(parts))
        if self.client is None:  # the client went away
            self.close()
            return
        Tunnel(client, self, early, rest)

    def on_eof(self) -> None:
        if self.head_done and not self.complete and self.content_length() is None \
                and _TE.search(self.fields) is None:
            # a body delimited by the connection close: the close is its end
            self.complete = True
            self.keep = False
            out = self._pieces(True) if self.sent_head else self._whole()
            if out:
                self.client.write(out)
                if self.client is None:
                    return
            self.done()
            return
        self.fail(502, "upstream prematurely closed connection while reading response "
                  "header from upstream" if not self.head_done else
                  "upstream prematurely closed connection while reading upstream")

    # ------------------------------------------------------------------ outcomes
    def done(self) -> None:
        """The response is complete and written (or queued) to the client: pool or close
        this connection, then let the client log and go on."""
        client = self.client
        req = self.req
        target = self.target
        self.client = self.req = self.out = None
        client.up = None
        pool = self.pool
        now = pool.now()
        code = self.code
        req.up_status = code
        req.up_time = now - self.t_begin
        req.sent = 0 if self.head_req else self.nbody
        self.requests += 1
        upstream = target.upstream
        if upstream.tracks:
            upstream.balancer.done(self.node, req.up_time)  # ewma latency, least_conn count
        if upstream.health is not None:
            upstream.health.report_http_status(self.node.name, code)  # passive checks
        if req.stream == STREAM_OPEN:
            # answered before the whole body went out: this connection holds part of a
            # request, and the client's rest of the body is not worth reading
            self.keep = False
            self.client_keep = False
        if self.keep and not self.closed and self.obuf is None \
                and self.requests < upstream.pool_requests:
            idle = pool.idle.get(self.addr)
            if idle is None:
                idle = pool.idle[self.addr] = []
            if len(idle) < upstream.pool_size:
                self.idle_timeout = upstream.pool_idle
                self.t_idle = now
                self.pooled = True
                self.target = None
                idle.append(self)
            else:
                self.close()
        else:
            self.close()
        client.finish(req, code, self.client_keep, now)

    def fail(self, status: int, message: str) -> None:
        """This exchange failed: retry (a stale pooled connection on a fresh one; else
        another try per ``retries``, see the module docstring) when that is safe, else
        answer ``status`` (502/504) if nothing was sent yet, else cut the client off."""
        client = self.client
        req = self.req
        if client is None:
            self.close()
            return
        self.client = None
        self.req = None
        client.up = None
        if client.paused_up is self:
            client.paused_up = None
        self.close()
        if status == 502 and self.reused and self.raw is None and not self.head_done \
                and not self.streamed \
                and req.method in IDEMPOTENT:
            fresh = UpConn(self.pool, self.node)
            if self.node.tls is not None:
                fresh.start_tls(req)
            fresh.begin(client, req, self.target, self.out, self.attempt)
            return
        node = self.node
        if every("upstream %s %s" % (node.name, message[:24]), 1.0):
            log.error('%s, client: %s, server: _, request: "%s %s HTTP/1.%d", '
                      'upstream: "http://%s%s", host: "%s"', message,
                      client.remote.decode(), req.method.decode("latin-1"),
                      (req.url or b"").decode("latin-1"), req.minor, node.name.decode(),
                      (req.url or b"").decode("latin-1"),
                      (req.host_hdr or b"").decode("latin-1"))
        target = self.target
        upstream = target.upstream
        upstream.balancer.failed(node)
        if upstream.retries and not self.head_done and not self.streamed and not req.stream \
                and (not self.connected or req.method in IDEMPOTENT):
            nxt, status = self._next_try(req, upstream, node, status)
            if nxt is not None:
                self.pool.forward(client, req, target, nxt, req.upstream_request(target, nxt),
                                  self.attempt)
                return
        if upstream.health is not None:
            upstream.health.report_http_status(node.name, status)  # passive, as APISIX's log
        req.up_status = status
        req.up_time = self.pool.now() - self.t_begin
        if req.stream == STREAM_OPEN or req.upgrade is not None:
            req.keep = False  # the rest of the body (or of the tunnel) is not worth reading
        if self.sent_head:
            client.abort()
        else:
            attempt = self.attempt
            client.respond(req, status, extra=b"X-APISIX-Upstream-Status: %s%d\r\n"
                           % (attempt.statuses if attempt is not None else b"", status))

    def _next_try(self, req: Any, upstream: Any, node: Any, status: int,
                  ) -> tuple[Any, int]:
        """(the node for the next try of ``req``, after this one failed with ``status``;
        the status), or (None, the status to answer): tries used up or ``retry_timeout``
        passed → this failure's status; every node tried → 502 (APISIX's balancer error).
        Rare path."""
        attempt = self.attempt
        now = self.pool.now()
        if attempt is None:
            attempt = self.attempt = _Attempt(
                upstream.retries,
                self.t_begin + upstream.retry_timeout if upstream.retry_timeout else 0.0)
        if attempt.left <= 0 or (attempt.deadline and now >= attempt.deadline):
            return None, status
        health = upstream.health
        if health is not None:      # APISIX reports a failed try when it retries
            if status == 504:
                health.report_timeout(node.name)
            else:
                health.report_tcp_failure(node.name)
        attempt.left -= 1
        if len(upstream.nodes) == 1:
            nxt = node              # one node: the retry lands on it again (APISIX)
        else:
            attempt.tried.add(node)
            nxt = upstream.balancer.pick(req, attempt.tried)
            if nxt is None:
                return None, 502
        attempt.statuses += b"%d, " % status
        return nxt, status

    def crashed(self) -> None:
        client = self.client
        if client is not None:
            client.crashed()   # logs, answers 500 when possible, closes us
        else:
            log.exception("unexpected error on upstream connection %s", self.node.name)
            self.close()

    def check(self, now: float) -> None:
        """Deadlines (called through the client's once-a-second check)."""
        if self.client is None:
            return
        timeout = self.target.timeout
        if not self.connected:
            if now - self.t_begin > timeout.connect:
                self.fail(504, "upstream timed out (110: Connection timed out) while "
                          "connecting to upstream")
        elif self.obuf is not None:
            if now - self.t_last > timeout.send:
                self.fail(504, "upstream timed out (110: Connection timed out) while "
                          "sending request to upstream")
        elif not self.paused and self.req.stream != STREAM_OPEN \
                and now - self.t_last > timeout.read:
            self.fail(504, "upstream timed out (110: Connection timed out) while reading "
                      "response header from upstream")

    # ------------------------------------------------------------------ flow control
    def pause(self) -> None:
        """Back-pressure: the client's send buffer is full; stop reading the upstream."""
        if not self.paused:
            self.paused = True
            self.rw.stop()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self.t_last = self.pool.now()
            if not self.closed:
                self.rw.start(self.on_readable)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.rw.stop()
        self.ww.stop()
        if self.pooled:
            self.pooled = False
            self.pool.discard(self)
        client = self.client
        if client is not None:
            self.client = None
            client.up = None
        try:
            self.sock.close()
        except OSError:
            pass
