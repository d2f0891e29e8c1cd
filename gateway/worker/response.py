"""Bytes the gateway writes on its own behalf.

Everything here is computed once and cached, because it sits on the hot path of every
response: status lines, ``Content-Length:`` lines, the ``Server:`` line (APISIX announces
itself on every response, proxied ones included) and the ``Date:`` line (recomputed at most
once per second, like nginx's cached time).

It also holds the responses the gateway makes itself: the 404 for "no route" (APISIX's exact
JSON body, served as ``text/plain`` as nginx falls back to), and small HTML pages of our own
wording for the statuses nginx/APISIX answer with an HTML page (400, 408, 413, 414, 431,
500, 502, 503, 504, ...).
"""

from __future__ import annotations

import base64
import time
from typing import Any

import gateway

CRLF = b"\r\n"
#: the blank line that ends a head
CRLF2 = b"\r\n\r\n"

REASONS: dict[int, bytes] = {
    100: b"Continue", 101: b"Switching Protocols", 102: b"Processing", 103: b"Early Hints",
    200: b"OK", 201: b"Created", 202: b"Accepted", 203: b"Non-Authoritative Information",
    204: b"No Content", 205: b"Reset Content", 206: b"Partial Content",
    207: b"Multi-Status", 300: b"Multiple Choices", 301: b"Moved Permanently",
    302: b"Moved Temporarily", 303: b"See Other", 304: b"Not Modified",
    307: b"Temporary Redirect", 308: b"Permanent Redirect", 400: b"Bad Request",
    401: b"Unauthorized", 402: b"Payment Required", 403: b"Forbidden", 404: b"Not Found",
    405: b"Not Allowed", 406: b"Not Acceptable", 408: b"Request Time-out",
    409: b"Conflict", 410: b"Gone", 411: b"Length Required", 412: b"Precondition Failed",
    413: b"Request Entity Too Large", 414: b"Request-URI Too Large",
    415: b"Unsupported Media Type", 416: b"Requested Range Not Satisfiable",
    417: b"Expectation Failed", 418: b"I'm a teapot", 421: b"Misdirected Request",
    422: b"Unprocessable Entity", 423: b"Locked", 424: b"Failed Dependency",
    425: b"Too Early", 426: b"Upgrade Required", 428: b"Precondition Required",
    429: b"Too Many Requests", 431: b"Request Header Fields Too Large",
    451: b"Unavailable For Legal Reasons", 494: b"Request Header Too Large",
    500: b"Internal Server Error", 501: b"Not Implemented", 502: b"Bad Gateway",
    503: b"Service Temporarily Unavailable", 504: b"Gateway Time-out",
    505: b"HTTP Version Not Supported", 507: b"Insufficient Storage",
}

_status_lines: dict[int, bytes] = {}


def status_line(code: int, reason: bytes | None = None) -> bytes:
    """``HTTP/1.1 <code> <reason>\\r\\n``; cached per code when the reason is ours.

    An upstream's own reason phrase is passed through (nginx does), so only the
    reason-less form is cached; a custom one costs one formatting.
    """
    if reason is None:
        line = _status_lines.get(code)
        if line is None:
            line = b"HTTP/1.1 %d %s\r\n" % (code, REASONS.get(code, b"Unknown"))
            _status_lines[code] = line
        return line
    return b"HTTP/1.1 %d %s\r\n" % (code, reason)


_CL_LINES = [b"Content-Length: %d\r\n" % i for i in range(8192)]


def content_length(n: int) -> bytes:
    """``Content-Length: <n>\\r\\n`` (small values from a table: no formatting per response)."""
    return _CL_LINES[n] if n < 8192 else b"Content-Length: %d\r\n" % n


CONN_KEEP = b"Connection: keep-alive\r\n"
CONN_CLOSE = b"Connection: close\r\n"
TE_CHUNKED = b"Transfer-Encoding: chunked\r\n"
COLSP = b": "
HEAD = b"HEAD"
LAST_CHUNK = b"0\r\n\r\n"
CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"
TEXT_PLAIN = b"Content-Type: text/plain\r\n"
TEXT_HTML = b"Content-Type: text/html\r\n"


def server_token(conf: dict[str, Any]) -> bytes:
    """The ``Server`` header value: ``APISIX/<version>``, bare ``APISIX`` without tokens."""
    try:
        from gateway.config import server_header  # the config piece owns this when present
    except ImportError:
        server_header = None
    if server_header is not None:
        try:
            value = server_header(conf)
            return value.encode() if isinstance(value, str) else bytes(value)
        except (KeyError, TypeError, AttributeError):
            pass  # a partial conf (tests, tools): compute it the same way below
    apisix = conf.get("apisix") or {}
    if apisix.get("enable_server_tokens", True) is False:
        return b"APISIX"
    version = apisix.get("server_version") or gateway.APISIX_VERSION
    return b"APISIX/" + str(version).encode()


class Clock:
    """Per-second cached time strings: the ``Date:`` line and the access log's $time_local.

    Both only change once a second; formatting them per request would be wasted work.
    Fed with the loop's cached wall-clock time (``loop.now()``), as nginx uses its cached time.
    """

    __slots__ = ("_sec", "next_tick", "date_line", "time_local")

    def __init__(self) -> None:
        self._sec = -1
        #: callers compare ``now >= clock.next_tick`` inline before calling :meth:`tick`
        self.next_tick = 0.0
        self.date_line = b""
        self.time_local = b""
        self.tick(time.time())

    def tick(self, now: float) -> None:
        """Refresh the cached strings when the second changed (cheap when it did not)."""
        sec = int(now)
        if sec == self._sec:
            return
        self._sec = sec
        self.next_tick = sec + 1.0
        gm = time.gmtime(sec)
        self.date_line = time.strftime("Date: %a, %d %b %Y %H:%M:%S GMT\r\n", gm).encode()
        self.time_local = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(sec)).encode()


NOT_FOUND_ROUTE = b'{"error_msg":"404 Route Not Found"}\n'

#: one sentence per status for our own HTML error pages (our wording)
_SENTENCES: dict[int, bytes] = {
    400: b"The request could not be understood by the gateway.",
    403: b"Access to this resource is forbidden.",
    404: b"The requested resource was not found on this gateway.",
    408: b"The client did not send the request in time.",
    413: b"The request body is larger than this gateway accepts.",
    414: b"The request line is longer than this gateway accepts.",
    431: b"The request headers are larger than this gateway accepts.",
    494: b"The request headers are larger than this gateway accepts.",
    500: b"The gateway hit an internal error while handling the request.",
    502: b"The gateway could not get a valid response from the upstream service.",
    503: b"The upstream service is not available right now. Please try again later.",
    504: b"The upstream service did not answer the gateway in time.",
}


def html_page(code: int, token: bytes) -> bytes:
    """A short HTML error page (APISIX/nginx serve HTML for these; the words are ours)."""
    title = b"%d %s" % (code, REASONS.get(code, b"Error"))
    sentence = _SENTENCES.get(code, b"The gateway could not complete the request.")
    return (b"<html>\n<head><title>%s</title></head>\n<body>\n<h1>%s</h1>\n<p>%s</p>\n"
            b"<hr><p>%s</p>\n</body>\n</html>\n" % (title, title, sentence, token))


class Responses:
    """Complete responses the gateway makes itself, precomputed per server (they depend
    only on config: the Server token) except for the Date line, spliced in at send time."""

    __slots__ = ("clock", "server_line", "_cache")

    def __init__(self, conf: dict[str, Any], clock: Clock):
        self.clock = clock
        self.server_line = b"Server: " + server_token(conf) + CRLF
        #: (code, keep, extra, html) -> (status+server, headers after Date, body)
        self._cache: dict[tuple[int, bool, bytes, bool], tuple[bytes, bytes, bytes]] = {}

    def parts(self, code: int, keep: bool, body: bytes | None = None,
              content_type: bytes | None = None, extra: bytes = b"",
              ) -> tuple[bytes, bytes, bytes]:
        """(status + Server lines, the header lines that follow Date, body).

        With ``body=None`` the status's HTML page is used; with ``body=NOT_FOUND_ROUTE``
        APISIX's "404 Route Not Found" JSON (as ``text/plain``, like APISIX). Both are
        cached. ``extra`` is pre-rendered header lines (e.g. ``X-APISIX-Upstream-Status``).
        """
        if body is not None and body is not NOT_FOUND_ROUTE:
            return self._render(code, keep, body, content_type or TEXT_PLAIN, extra)
        key = (code, keep, extra, body is None)
        parts = self._cache.get(key)
        if parts is None:
            if body is None:
                page, ctype = html_page(code, self.server_line[8:-2]), TEXT_HTML
            else:
                page, ctype = body, TEXT_PLAIN
            parts = self._render(code, keep, page, ctype, extra)
            if len(self._cache) < 256:
                self._cache[key] = parts
        return parts

    def make(self, code: int, keep: bool, body: bytes | None = None,
             content_type: bytes | None = None, extra: bytes = b"",
             head_only: bool = False) -> bytes:
        """A whole response: status, Server, Date, type, length, Connection, body (see
        :meth:`parts`). ``head_only`` answers a HEAD request: same headers, no body."""
        head, rest, page = self.parts(code, keep, body, content_type, extra)
        if head_only:
            return head + self.clock.date_line + rest
        return b"".join((head, self.clock.date_line, rest, page))

    def _render(self, code: int, keep: bool, body: bytes, ctype: bytes,
                extra: bytes) -> tuple[bytes, bytes, bytes]:
        head = status_line(code) + self.server_line
        rest = b"".join((ctype, content_length(len(body)), extra,
                         CONN_KEEP if keep else CONN_CLOSE, CRLF))
        return head, rest, body


# ---------------------------------------------------------------------- access log
_PRINTABLE = bytes(range(0x20, 0x7f)).replace(b'"', b"").replace(b"\\", b"")


def _esc(value: bytes | None) -> bytes:
    """nginx's default access-log escaping: ``"``, ``\\`` and non-printables as \\xHH."""
    if not value:
        return b"-"
    if not value.translate(None, _PRINTABLE):
        return value
    return b"".join(bytes((c,)) if 0x20 <= c < 0x7f and c not in (0x22, 0x5c)
                    else b"\\x%02X" % c for c in value)


def _remote_user(auth: bytes | None) -> bytes:
    if not auth or auth[:6].lower() != b"basic ":
        return b"-"
    try:
        user = base64.b64decode(auth[6:].strip(), validate=True).partition(b":")[0]
    except ValueError:
        return b"-"
    return _esc(user)


#: a proxied request's line without Referer and Authorization
_LINE = b'%s - - [%s] %s "%s %s HTTP/1.%d" %d %d %.3f "-" "%s" %s %d %.3f "http://%s%s"\n'


def access_entry(client: Any, req: Any, status: int, now: float) -> Any:
    """APISIX's default access-log format (the ``main`` format of its nginx.conf):

    ``$remote_addr - $remote_user [$time_local] $http_host "$request" $status
    $body_bytes_sent $request_time "$http_referer" "$http_user_agent" $upstream_addr
    $upstream_status $upstream_response_time "$upstream_scheme://$upstream_host$upstream_uri"``

    The common case (a proxied request, no Referer or Authorization) is the tuple of its
    values, made a line by :func:`render_access` when the log flushes; anything else is the
    line itself (:func:`_access_line_slow`).
    """
    if req.rare or req.up_addr is None or not req.up_status:
        return _access_line_slow(client, req, status, now)
    return (client.remote, client.server.clock.time_local, req.host_hdr or b"-", req.method,
            req.url or b"-", req.minor, status, req.sent, now - req.t_start, req.ua or b"-",
            req.up_addr, req.up_status, req.up_time, req.up_host)


def render_access(entry: Any) -> bytes:
    """The line of an :func:`access_entry`: one format operation when the client-supplied
    values are printable, nginx's escaping otherwise."""
    if entry.__class__ is bytes:
        return entry
    (remote, time_local, host, method, url, minor, status, sent, took, ua, up_addr, up_status,
     up_time, up_host) = entry
    if not b"".join((host, url, ua)).translate(None, _PRINTABLE):
        return _LINE % (remote, time_local, host, method, url, minor, status, sent, took, ua,
                        up_addr, up_status, up_time, up_host, url)
    return _LINE % (remote, time_local, _esc(host), method, _esc(url), minor, status, sent, took,
                    _esc(ua), up_addr, up_status, up_time, _esc(up_host), _esc(url))


def _access_line_slow(client: Any, req: Any, status: int, now: float) -> bytes:
    referer = req.referer if req.rare else None
    auth = req.auth if req.rare else None
    if req.up_addr is not None:
        upstream = b'%s %s %.3f "http://%s%s"' % (
            req.up_addr, b"%d" % req.up_status if req.up_status else b"-",
            req.up_time, _esc(req.up_host), _esc(req.url))
    else:
        upstream = b'- - - "http://%s"' % (req.host_hdr and _esc(req.host_hdr) or b"")
    return b'%s - %s [%s] %s "%s %s HTTP/1.%d" %d %d %.3f "%s" "%s" %s\n' % (
        client.remote, _remote_user(auth), client.server.clock.time_local,
        _esc(req.host_hdr), req.method, _esc(req.url), req.minor, status, req.sent,
        now - req.t_start, _esc(referer), _esc(req.ua), upstream)
