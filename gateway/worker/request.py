"""One HTTP request as the worker sees it: the httptools parser protocol and the request ctx.

A `Request` belongs to its client connection and is reused for each request on it (fields
are rebound, never mutated, so a pipelined request can be detached as a copy). Headers are
classified once per distinct name spelling (cached on the exact bytes, no `.lower()` per
header) and the upstream request head is assembled with one `b"".join`.

The usual request (a whole bodiless HTTP/1.1 request in one read, nothing after it) is
parsed by :meth:`Request.whole` without llhttp's six callbacks: a strict subset of what
llhttp accepts, read the way llhttp reads it; anything else goes to llhttp. A keep-alive
connection repeats its header block, so the parsed block is kept per connection and
reused when the next request's block is byte for byte the same.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gateway.core.router import HOST_CACHE, PATH_CACHE, request_host, routing_path
from gateway.worker.response import (COLSP, CONTINUE_100, CRLF, CRLF2, LAST_CHUNK,
                                     content_length)
from gateway.worker.table import Target

if TYPE_CHECKING:
    from gateway.worker.http import Client
    from gateway.worker.server import HttpServer

SP = b" "
HTTP11_HOST = b" HTTP/1.1\r\nHost: "
CL0 = b"Content-Length: 0\r\n\r\n"
TE_CHUNKED_END = b"Transfer-Encoding: chunked\r\n\r\n"
XFH = b"X-Forwarded-Host: "
UPGRADE_CONN = b"\r\nConnection: upgrade\r\n"

# request header classes, cached on the exact name bytes (no .lower() per header)
(K_KEEP, K_DROP, K_HOST, K_XFF, K_CL, K_TE, K_EXPECT, K_UA, K_REFERER, K_AUTH, K_XF,
 K_CONN, K_UPGRADE, K_IDENT) = range(14)
_NAMED = {b"host": K_HOST, b"x-forwarded-for": K_XFF, b"content-length": K_CL,
          b"transfer-encoding": K_TE, b"expect": K_EXPECT, b"user-agent": K_UA,
          b"referer": K_REFERER, b"authorization": K_AUTH, b"x-forwarded-proto": K_XF,
          b"x-forwarded-host": K_XF, b"x-forwarded-port": K_XF, b"connection": K_CONN,
          b"upgrade": K_UPGRADE,
          # the consumer identity headers only the gateway may set (consumers.py strips
          # them on routes with an auth plugin when the request is flagged ``ident``)
          b"x-consumer-username": K_IDENT, b"x-credential-identifier": K_IDENT,
          b"x-consumer-custom-id": K_IDENT}
#: hop-by-hop headers, and the ones the gateway sets itself
_DROPPED = frozenset((b"keep-alive", b"proxy-connection", b"te", b"trailer",
                      b"proxy-authenticate", b"proxy-authorization", b"x-real-ip"))
_req_kind: dict[bytes, int] = {}
#: the header kinds :meth:`Request.whole` hands to :meth:`Request.on_header` (they set
#: per-request fields; a block without them is kept for the connection's next request).
#: The framing kinds (Content-Length, Transfer-Encoding, Expect, Upgrade, Connection but
#: keep-alive) leave the request to llhttp
_FIELD_KINDS = frozenset((K_XFF, K_XF, K_REFERER, K_AUTH, K_IDENT))
#: :meth:`Request.whole`'s request line: a method that llhttp reads as a plain request
#: (CONNECT is not) and an origin-form target of visible ASCII (llhttp accepts all of it)
_WHOLE_LINE = re.compile(rb"(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH) (/[!-~]*) HTTP/1\.1")
#: header lines of token names and field-value characters, each ending in CRLF: no
#: obs-fold, no bare LF, no NUL or other control character but HTAB
_WHOLE_FIELDS = re.compile(rb"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t -~\x80-\xff]*\r\n)*")


def _classify(name: bytes) -> int:
    low = name.lower()
    kind = _NAMED.get(low)
    if kind is None:
        kind = K_DROP if low in _DROPPED else K_KEEP
    if len(_req_kind) < 4096:
        _req_kind[name] = kind
    return kind


#: ``Request.stream``: 0 no streaming (no body, or all of it arrived with the head);
#: WANTED the body is incomplete after the head's read, the client starts the upstream
#: exchange as soon as it can; OPEN the head went out, body pieces follow as they arrive;
#: ENDED the whole body went out
STREAM_WANTED, STREAM_OPEN, STREAM_ENDED = 1, 2, 3


class Reject(Exception):
    """Raised from a parser callback to answer ``status`` and close the connection."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class Request:
    """httptools protocol for one client connection, reused for each of its requests, and
    the ctx of the request being parsed. Attributes are rebound (never mutated) per
    request, so a detached copy (pipelining) keeps its own data.

    Fields only some requests carry (from ``xff`` on in ``__slots__``) are reset only when
    one of them was set (``rare``): fewer stores per request on the common path. ``route``
    and ``target`` are what the router matched (``target`` None: no route → 404).
    """

    __slots__ = ("client", "method", "url", "path", "host_hdr", "host", "hdrs", "ua",
                 "keep", "minor", "t_start", "target", "route", "sent",
                 "up_addr", "up_status", "up_time", "up_host", "pctx", "rare",
                 "xff", "xf", "referer", "auth", "clen", "chunked", "expect", "conn", "ident",
                 "body", "nbody", "stream", "upgrade", "nhdrs")

    def __init__(self, client: Client):
        self.client = client
        self.method = b"-"
        self.url = None
        self.keep = False
        self.minor = 1
        self.host_hdr = None
        self.target = None
        self.rare = True
        self.hdrs = []
        #: the plugin ctx (gateway.worker.plugin_ctx) when the route runs plugins
        self.pctx = None

    def copy(self) -> Request:
        """A detached copy (pipelining: the parser moves on to the next request)."""
        twin = Request.__new__(Request)
        for name in Request.__slots__:
            try:
                setattr(twin, name, getattr(self, name))
            except AttributeError:
                pass
        return twin

    # ---- httptools callbacks
    def on_message_begin(self) -> None:
        client = self.client
        if client.active is self:
            client.detach()
        client.pstate = 1
        server = client.server
        self.t_start = now = server.now()
        clock = server.clock
        if now >= clock.next_tick:
            clock.tick(now)
        self.url = None
        self.host_hdr = None
        self.hdrs = []
        self.ua = None
        self.sent = 0
        self.up_addr = None
        self.up_status = 0
        self.pctx = None
        if self.rare:
            self.rare = False
            self.xff = self.xf = self.referer = self.auth = None
            self.clen = self.expect = self.conn = self.body = None
            self.chunked = self.ident = False
            self.nbody = 0
            self.stream = 0
            self.upgrade = None

    def on_url(self, url: bytes) -> None:
        if self.url is not None:
            url = self.url + url
        self.url = url
        if len(url) > self.client.server.max_line:
            raise Reject(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        kind = _req_kind.get(name)
        if kind is None:
            kind = _classify(name)
        if kind == K_KEEP:
            self.hdrs += (name, COLSP, value, CRLF)
        elif kind == K_HOST:
            if self.host_hdr is not None:
                raise Reject(400)  # nginx: "client sent duplicate host header"
            self.host_hdr = value
        elif kind == K_UA:
            self.ua = value
            self.hdrs += (name, COLSP, value, CRLF)
        elif kind == K_DROP:
            return
        else:
            self._rare_header(kind, name, value)

    def _rare_header(self, kind: int, name: bytes, value: bytes) -> None:
        self.rare = True
        if (kind == K_XFF or kind == K_XF) and not self.client.trusted:
            return  # apisix.trusted_addresses: replaced by the gateway's own values
        if kind == K_CONN:
            self.conn = value
        elif kind == K_XFF:
            self.xff = value if self.xff is None else self.xff + b", " + value
        elif kind == K_CL:
            self.clen = value
        elif kind == K_TE:
            self.chunked = True  # llhttp validated it; the body is re-framed
        elif kind == K_REFERER:
            self.referer = value
            self.hdrs += (name, COLSP, value, CRLF)
        elif kind == K_AUTH:
            self.auth = value
            self.hdrs += (name, COLSP, value, CRLF)
        elif kind == K_EXPECT:
            self.expect = value
        elif kind == K_UPGRADE:
            self.upgrade = value  # forwarded only to a route with enable_websocket
        elif kind == K_IDENT:
            self.ident = True
            self.hdrs += (name, COLSP, value, CRLF)
        elif kind == K_XF:
            # APISIX forwards the client's X-Forwarded-Proto/Host/Port when present
            if self.xf is None:
                self.xf = {}
            self.xf[name.lower()] = value

    def on_headers_complete(self) -> None:
        client = self.client
        server = client.server
        parser = client.parser
        client.pstate = 2
        if client.head_bytes > server.max_head and self._head_size() > server.max_head:
            raise Reject(400)  # nginx: "Request Header Or Cookie Too Large"
        self.method = method = parser.get_method()
        self.keep = keep = parser.should_keep_alive() and not client.no_keep
        if keep and self.conn is None:
            self.minor = 1  # an HTTP/1.0 request is kept alive only when it asks to be
        else:
            self.minor = 0 if parser.get_http_version() == "1.0" else 1
        self._route(client, server, method)

    def _route(self, client: Client, server: HttpServer, method: bytes) -> None:
        """The head is parsed: the routing path and host, then the route."""
        url = self.url or b"/"
        q = url.find(b"?")
        path = url if q < 0 else url[:q]
        routed = PATH_CACHE.get(path)
        if routed is None:
            if path[:1] != b"/" and b"://" in path:
                routed = self._absolute_form(path)
            else:
                routed = routing_path(path)
        if not routed:
            self.target = None
            raise Reject(400)
        self.path = routed
        host_hdr = self.host_hdr
        if host_hdr is None:
            host = b""
        else:
            host = HOST_CACHE.get(host_hdr)
            if host is None:
                host = request_host(host_hdr)
        self.host = host
        self.route = route = server.table.router.match_host(method, host, routed, self)
        self.target = route.data if route is not None else None
        if self.rare:
            self._check_body(client, server)

    def whole(self, data: bytes) -> bool:
        """Take ``data`` as one whole request without llhttp, when it is the usual kind:
        an HTTP/1.1 request line in origin form, header lines :data:`_WHOLE_FIELDS`
        accepts, no header that frames a body or changes the connection (but
        ``Connection: keep-alive``), and nothing after the head. Values are read as llhttp
        reads them (leading blanks dropped, trailing ones kept). False: nothing was
        consumed, llhttp parses ``data``. The caller checked ``data`` ends with a blank
        line and came between requests (never within a body)."""
        client = self.client
        server = client.server
        end = data.find(CRLF2)
        if end != len(data) - 4 or len(data) > server.max_head:
            return False     # pipelined, a body, or a head for llhttp's size check
        first = data.find(CRLF)
        line = _WHOLE_LINE.fullmatch(data, 0, first)
        if line is None:
            return False
        url = line.group(2)
        if len(url) > server.max_line:
            return False     # llhttp's path answers 414
        fields = data[first + 2:end + 2]
        if fields == client.last_fields:
            block = client.last_block
        else:
            block = self._fields(fields)
            if block is None:
                return False
            if block[3] is None:
                client.last_fields = fields
                client.last_block = block
        self.on_message_begin()
        self.url = url
        hdrs, host_hdr, ua, lines = block
        if lines is None:
            self.hdrs = hdrs    # shared with the next requests: never mutated (rebound)
            self.host_hdr = host_hdr
            self.ua = ua
        else:
            for name, value in lines:
                self.on_header(name, value)
        client.pstate = 2
        self.method = method = line.group(1)
        self.keep = not client.no_keep
        self.minor = 1
        self._route(client, server, method)
        self.on_message_complete()
        return True

    @staticmethod
    def _fields(fields: bytes) -> tuple[Any, Any, Any, Any] | None:
        """A header block for :meth:`whole`: (headers to forward, Host, User-Agent, None)
        when every header is of a kind kept as a block, (None, None, None, the (name,
        value) pairs for :meth:`on_header`) when some set per-request fields; None when
        llhttp must parse it."""
        if _WHOLE_FIELDS.fullmatch(fields) is None:
            return None
        hdrs: list[bytes] = []
        host = ua = None
        pairs = []
        plain = True
        for raw in fields.split(CRLF)[:-1]:
            name, _, value = raw.partition(b":")
            value = value.lstrip(b" \t")
            pairs.append((name, value))
            kind = _req_kind.get(name)
            if kind is None:
                kind = _classify(name)
            if kind == K_KEEP:
                hdrs += (name, COLSP, value, CRLF)
            elif kind == K_HOST:
                if host is not None:
                    return None      # llhttp's path answers 400
                host = value
            elif kind == K_UA:
                ua = value
                hdrs += (name, COLSP, value, CRLF)
            elif kind == K_DROP:
                if name.lower() == b"proxy-connection":
                    return None      # llhttp reads it as Connection
            elif kind in _FIELD_KINDS or (kind == K_CONN
                                          and value.lower() == b"keep-alive"):
                plain = False
            else:
                return None
        if plain:
            return hdrs, host, ua, None
        return None, None, None, pairs

    def _check_body(self, client: Client, server: HttpServer) -> None:
        """Content-Length over the limit → 413 now; ``Expect: 100-continue`` → 100; a
        request with a body may stream it (``stream`` 1: the client starts it when the
        body did not end within the read that carried the head)."""
        if self.clen is not None:
            limit = server.max_body
            if limit and int(self.clen) > limit:
                raise Reject(413)
            if self.clen != b"0":
                self.stream = STREAM_WANTED
        elif self.chunked:
            self.stream = STREAM_WANTED
        if self.chunked:
            self.nhdrs = len(self.hdrs)  # what follows the body (trailers) is dropped
        if self.expect is not None and self.minor == 1 and (self.chunked or self.clen not in
                                                             (None, b"0")):
            if self.expect.lower() == b"100-continue" and client.active is None \
                    and client.wbuf is None:
                client.write(CONTINUE_100)

    def _head_size(self) -> int:
        """Size of the request head as parsed (rare path: only for large reads)."""
        total = len(self.url or b"") + len(b"".join(self.hdrs)) + 16
        for value in (self.host_hdr, self.xff, self.clen, self.expect):
            if value is not None:
                total += len(value) + 20
        if self.xf:
            total += sum(len(v) + 20 for v in self.xf.values())
        return total

    def _absolute_form(self, target: bytes) -> bytes:
        """``GET http://host/path`` (absolute-form): the host comes from the URL, and the
        upstream gets the origin-form."""
        rest = target[target.find(b"://") + 3:]
        slash = rest.find(b"/")
        self.host_hdr = rest if slash < 0 else rest[:slash]
        path = b"/" if slash < 0 else rest[slash:]
        url = self.url or b""
        self.url = path + url[len(target):]
        return routing_path(path, cache=False)

    def on_body(self, data: bytes) -> None:
        self.rare = True
        self.nbody += len(data)
        limit = self.client.server.max_body
        if limit and self.nbody > limit:
            raise Reject(413)
        if self.stream == STREAM_OPEN:
            # streaming: straight to the upstream (discarded when that exchange is over,
            # e.g. it answered early or the route had no upstream)
            up = self.client.up
            if up is not None and up.req is self:
                up.push(b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data)
            return
        if self.body is None:
            self.body = [data]
        else:
            self.body.append(data)

    def on_message_complete(self) -> None:
        client = self.client
        client.pstate = 0
        stream = self.stream
        if stream:  # (0 for requests without a body: one test on the common path)
            if stream == STREAM_OPEN:
                self.stream = STREAM_ENDED
                up = client.up
                if up is not None and up.req is self:
                    if self.chunked:
                        up.push(LAST_CHUNK)
                    up.body_ended()
                return
            self.stream = 0  # the whole body is here: the one-send path
            if self.chunked and len(self.hdrs) > self.nhdrs:
                self.hdrs = self.hdrs[:self.nhdrs]
        if client.active is None and not client.queue and not client.closing:
            client.start(self)  # the common case, without the queueing checks' call
        else:
            client.on_request(self)

    # ---- upstream side
    def upstream_request(self, target: Target, node: Any) -> bytes:
        """The request for the upstream, in one join: request line, Host, the client's
        end-to-end headers, X-Real-IP/X-Forwarded-*, body re-framed with Content-Length."""
        client = self.client
        up = target.upstream
        if up.pass_host == "pass":
            host = self.host_hdr or node.host_header
        elif up.pass_host == "node":
            host = node.host_header
        else:
            host = up.host_header
        self.up_host = host
        parts = [self.method, SP, self.url or b"/", HTTP11_HOST, host, CRLF]
        parts += self.hdrs
        pctx = self.pctx
        if pctx is not None and pctx.head_edits:
            pctx.edit_head(parts)  # plugins changed the method, target or Host
        if not self.rare:
            # X-Real-IP, X-Forwarded-*: one block per connection and Host value; no body
            if self.host_hdr == client.fwd_key:
                parts += (client.fwd_block, CRLF)
            else:
                parts += (client.forward_block(self), CRLF)
            return b"".join(parts)
        if self.upgrade is not None:
            if target.websocket and self.conn is not None and b"upgrade" in self.conn.lower():
                parts += (b"Upgrade: ", self.upgrade, UPGRADE_CONN)  # a tunnel, on 101
            else:
                self.upgrade = None  # no WebSocket here: a plain request, as nginx does
        if self.xff is None:
            parts.append(client.fwd)
        else:
            parts += (client.xri, b"X-Forwarded-For: ", self.xff, b", ", client.remote, CRLF)
        if self.xf is None:
            if self.host:
                parts += (XFH, self.host, CRLF)
            parts.append(client.fwd_tail)
        else:
            self._forwarded(parts)
        body = self.body
        if self.stream == STREAM_OPEN:
            # the head now, the body as it arrives: framed as the client framed it
            if self.chunked:
                parts.append(TE_CHUNKED_END)
                if body:
                    for piece in body:
                        parts += (b"%x\r\n" % len(piece), piece, CRLF)
            else:
                parts += (b"Content-Length: ", self.clen, CRLF, CRLF)
                if body:
                    parts += body
            self.body = None
        elif body is not None:
            data = body[0] if len(body) == 1 else b"".join(body)
            parts += (content_length(len(data)), CRLF, data)
        elif self.clen is not None or self.chunked:
            parts.append(CL0)
        else:
            parts.append(CRLF)
        return b"".join(parts)

    def _forwarded(self, parts: list[bytes]) -> None:
        xf = self.xf
        client = self.client
        parts += (b"X-Forwarded-Proto: ", xf.get(b"x-forwarded-proto", client.proto), CRLF)
        host = xf.get(b"x-forwarded-host", self.host)
        if host:
            parts += (XFH, host, CRLF)
        parts += (b"X-Forwarded-Port: ", xf.get(b"x-forwarded-port", client.port), CRLF)
