"""The mock upstream on 127.0.0.1:1980, 1981, 1982 (and TLS on 1983), following APISIX's test-server conventions.

APISIX's tests proxy to a fake backend whose behaviour is keyed by path: `/a/b.c` runs the
handler `a_b_c` (so `/hello` answers `hello world\\n`, `/server_port` the port...), an unknown
path is a 404, and a request header `resp-X: v` makes the backend answer with header `X: v`.
Ported `.t` files rely on these answers byte for byte, so this module reproduces them in
Python. It runs in the pytest process, in threads, so the harness can *observe* it: every
arrival is counted per path (`wait_for_arrival`) which is how a test knows that a slow request
is in flight before it signals the gateway, without sleeping.

Handlers that APISIX's backend makes write to nginx's error log (`/log`, `/status`, unknown
paths...) append to `log_path` when the runner set one (the error log of the gateway under
test), since tests grep for those lines there.

`/websocket` with `Upgrade: websocket` does a minimal RFC 6455 handshake (101 with
Sec-WebSocket-Accept) and then echoes every data frame back unmasked, until a close frame
or EOF; `/body_size` answers the size of the request body without holding it.

For retries and health checks: `/reset` ends the connection with a TCP RST before any
response byte (`?port=N`: only on port N, elsewhere it answers the port); `/mysleep?seconds=S`
hangs S seconds (`&abort`: then closes without answering); `/port_status?port=N&code=C`
answers C from port N and 200 elsewhere; `/flap?token=T&fail=N` answers 503 to the first N
requests of token T on each port, then 200 (a node going down and coming back).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import struct
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

PORTS = (1980, 1981, 1982)
#: the TLS listener (t/certs/test.crt: test.com, *.test.com): `/sni` answers the server name
#: the client sent, `/client_cert` the CN of its certificate (verified against
#: t/certs/mtls_ca.crt) or "none"; other paths as on the plain ports
TLS_PORT = 1983
CERTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "certs")
#: headers the mock never copies from request to response in /echo (framing is its own)
_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "te",
                  "upgrade", "proxy-connection", "trailer"})
_IGNORED_IN_URI = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                             "x-forwarded-port"})


class Reply:
    """What a handler produced: status, headers, body pieces (several pieces = chunked)."""

    def __init__(self, status: int = 200):
        self.status = status
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.chunked = False
        self.abort = False
        self.reset = False  #: close with a TCP RST instead of answering

    def say(self, *parts: object) -> None:
        self.print(*parts, "\n")

    def print(self, *parts: object) -> None:
        self.chunks.append("".join(str(p) for p in parts).encode())

    def header(self, name: str, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, value))


class Req:
    """The request as a handler sees it."""

    def __init__(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
                 port: int, log: Callable[[str, str], None] = lambda level, msg: None):
        self.method, self.target, self.body, self.port = method, target, body, port
        self.log = log  #: writes `[level] message` to the gateway's error log, if set
        self.conn: object = None  #: the client connection (an SSLSocket on the TLS port)
        parts = urlsplit(target)
        self.path, self.query = parts.path, parts.query
        self.args = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.header_list = headers

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.header_list:
            if k.lower() == name:
                return v
        return None

    def sorted_headers(self, skip: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
        """Lower-cased names, sorted; repeated names concatenated as ngx.say prints a table."""
        merged: dict[str, str] = {}
        for k, v in self.header_list:
            k = k.lower()
            if k not in skip:
                merged[k] = merged.get(k, "") + v
        return sorted(merged.items())


def _hello(r: Req, o: Reply) -> None:
    o.say("hello world")


def _hello_chunked(r: Req, o: Reply) -> None:
    o.chunked = True
    o.chunks = [b"hell", b"o w", b"orld\n"]


def _server_port(r: Req, o: Reply) -> None:
    o.print(r.port)


def _limit_conn(r: Req, o: Reply) -> None:
    time.sleep(0.3)
    o.say("hello world")


def _proxy_rewrite(r: Req, o: Reply) -> None:
    o.say("uri: ", r.path)
    o.say("host: ", (r.header("host") or "").split(":")[0])
    o.say("scheme: http")


def _proxy_rewrite_args(r: Req, o: Reply) -> None:
    o.say("uri: ", r.path)
    grouped: dict[str, list[str]] = {}
    for k, v in parse_qsl(r.query, keep_blank_values=True):
        grouped.setdefault(k, []).append(v)
    for k in sorted(grouped):
        o.say(k, ": ", ",".join(grouped[k]))


def _specific_status(r: Req, o: Reply) -> None:
    status = r.header("x-test-upstream-status")
    if status:
        o.status = int(status)
        o.say("upstream status: ", status)


def _status(r: Req, o: Reply) -> None:
    r.log("warn", f"client request host: {r.header('host')}")
    o.say("ok")


def _ewma(r: Req, o: Reply) -> None:
    time.sleep(0.2 if r.port in (1981, 1982) else 0.1)
    o.print(r.port)


def _uri(r: Req, o: Reply) -> None:
    o.say("uri: ", r.path)
    for k, v in r.sorted_headers(_IGNORED_IN_URI):
        o.say(k, ": ", v)


def _old_uri(r: Req, o: Reply) -> None:
    o.say("uri: ", r.path)
    for k, v in r.sorted_headers():
        o.say(k, ": ", v)


def _print_request_received(r: Req, o: Reply) -> None:
    o.say("request_uri: ", r.target)
    for k, v in r.sorted_headers():
        o.say(k, ": ", v)


def _with_header(r: Req, o: Reply) -> None:
    o.chunked = True
    o.chunks = [b"hello\n", b"world\n", b"!\n"]


def _api_breaker(r: Req, o: Reply) -> None:
    _nginx_page(o, int(r.args.get("code", "500")))


def _mysleep(r: Req, o: Reply) -> None:
    seconds = r.args.get("seconds", "0")
    time.sleep(float(seconds or 0))
    if "abort" in r.args:
        o.abort = True
    else:
        o.say(seconds)


def _reset(r: Req, o: Reply) -> None:
    """A reset before any response byte (on every port, or only on ``?port=N``); else the
    port, as /server_port."""
    if "port" not in r.args or r.args["port"] == str(r.port):
        o.reset = True
    else:
        o.print(r.port)


def _port_status(r: Req, o: Reply) -> None:
    """``?port=N&code=C``: status C from port N, 200 and the port elsewhere."""
    o.print(r.port)
    if r.args.get("port") == str(r.port):
        o.status = int(r.args.get("code", "500"))


_flaps: Counter[tuple[str, int]] = Counter()
_flaps_lock = threading.Lock()


def _flap(r: Req, o: Reply) -> None:
    """``?token=T&fail=N``: the first N requests of token T on each port answer 503, the
    next ones 200 (a node that goes down, then comes back, for health checks)."""
    key = (r.args.get("token", ""), r.port)
    with _flaps_lock:
        _flaps[key] += 1
        seen = _flaps[key]
    if seen <= int(r.args.get("fail", "1")):
        o.status = 503
    o.print(r.port)


def _print_uri(r: Req, o: Reply) -> None:
    o.say(r.path)


def _print_uri_detailed(r: Req, o: Reply) -> None:
    o.say("ngx.var.uri: ", r.path)
    o.say("ngx.var.request_uri: ", r.target)


def _headers(r: Req, o: Reply) -> None:
    for k, v in r.args.items():
        o.header(k, v)
    o.say("/headers")


def _echo(r: Req, o: Reply) -> None:
    for k, v in r.header_list:
        if k.lower() not in _HOP:
            o.header(k, v)
    o.chunks.append(r.body)


def _log(r: Req, o: Reply) -> None:
    r.log("warn", f"request log: {r.body.decode('utf-8', 'replace') or 'nil'}")


def _log_request(r: Req, o: Reply) -> None:
    r.log("warn", f"uri: {r.path}")
    for k, v in r.sorted_headers():
        r.log("warn", f"{k}: {v}")


def _server_error(r: Req, o: Reply) -> None:
    r.log("error", "500 Internal Server Error")
    _nginx_page(o, 500)


def _bad_request(r: Req, o: Reply) -> None:
    o.status = 400
    o.say("Bad Request")


def _internal_error(r: Req, o: Reply) -> None:
    o.status = 500
    o.say("Internal Server Error")


HANDLERS: dict[str, Callable[[Req, Reply], None]] = {
    "hello": _hello, "hello_chunked": _hello_chunked,
    "hello1": lambda r, o: o.say("hello1 world"),
    "course_foo": lambda r, o: o.say("course foo"),
    "server_port": _server_port, "server_port_route2": _server_port,
    "server_port_hello": _server_port, "server_port_aa": _server_port,
    "limit_conn": _limit_conn, "plugin_proxy_rewrite": _proxy_rewrite,
    "plugin_proxy_rewrite_args": _proxy_rewrite_args, "specific_status": _specific_status,
    "status": _status, "ewma": _ewma, "uri": _uri, "uri_plugin_proxy_rewrite": _uri,
    "uri_plugin_proxy_rewrite_args": _uri, "old_uri": _old_uri,
    "print_request_received": _print_request_received, "opentracing":
    lambda r, o: o.say("opentracing"), "with_header": _with_header,
    "api_breaker": _api_breaker, "mysleep": _mysleep, "print_uri_detailed": _print_uri_detailed,
    "headers": _headers, "echo": _echo, "v1_responses": _echo, "bad_request": _bad_request,
    "internalservererror": _internal_error, "log": _log, "log_request": _log_request,
    "server_error": _server_error, "body_size": lambda r, o: o.chunks.append(r.body),
    "reset": _reset, "port_status": _port_status, "flap": _flap,
}
HANDLERS.update({f"print_uri_{i}": _print_uri for i in range(1, 101)})

_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Not Allowed", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}


def _nginx_page(o: Reply, status: int) -> None:
    """The body nginx sends for `ngx.exit(status)`: a tiny HTML page."""
    o.status = status
    if status >= 300:
        title = f"{status} {_REASONS.get(status, '')}".strip()
        o.header("Content-Type", "text/html")
        o.print(f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
                f"<center><h1>{title}</h1></center>\r\n<hr><center>openresty</center>\r\n"
                f"</body>\r\n</html>\r\n")


def action_name(path: str) -> str:
    """`/a/b.c-d` -> `a_b_c_d`, the backend's dispatch rule."""
    out = path[1:]
    for ch in "/\\.-":
        out = out.replace(ch, "_")
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "openresty"
    sys_version = ""
    timeout = 60  # an idle keep-alive connection is dropped after this (socket timeout)
    server: "_Server"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass

    def __getattr__(self, name: str) -> Callable[[], None]:
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _read_body(self) -> bytes:
        """The request body; for ``/body_size`` only its size in decimal (big bodies are
        counted, never held: tests of bounded memory send hundreds of MB there)."""
        count_only = self.path.startswith("/body_size")
        parts: list[bytes] = []
        total = 0
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += self._take(size, parts, count_only)
                self.rfile.readline()
        else:
            total = self._take(int(self.headers.get("Content-Length") or 0), parts,
                               count_only)
        return b"%d" % total if count_only else b"".join(parts)

    def _take(self, size: int, parts: list[bytes], count_only: bool) -> int:
        got = 0
        while got < size:
            piece = self.rfile.read(min(size - got, 1 << 20))
            if not piece:
                break
            got += len(piece)
            if not count_only:
                parts.append(piece)
        return got

    def _serve(self) -> None:
        mock = self.server.mock
        if self.path.startswith("/websocket") \
                and (self.headers.get("Upgrade") or "").lower() == "websocket":
            mock.record(Req(self.command, self.path, list(self.headers.items()), b"",
                            self.server.server_address[1], mock.log))
            self._websocket()
            return
        body = self._read_body()
        port = self.server.server_address[1]
        req = Req(self.command, self.path, list(self.headers.items()), body, port, mock.log)
        req.conn = self.connection
        mock.record(req)
        out = Reply()
        for k, v in req.header_list:
            if k.lower().startswith("resp-"):
                out.header(k[5:], v)
        handler = HANDLERS.get(action_name(req.path))
        if handler is None:
            mock.log("warn", f"undefined path in test server, uri: {req.target}")
            _nginx_page(out, 404)
        else:
            try:
                handler(req, out)
            except Exception as e:  # a broken handler is a 500 with a log line, like Lua
                mock.log("error", f"mock handler {req.path} failed: {e!r}")
                out = Reply()
                _nginx_page(out, 500)
        self._send(out)

    def _websocket(self) -> None:
        """Handshake, then echo data frames (opcode kept, payload unmasked) until close."""
        key = self.headers.get("Sec-WebSocket-Key") or ""
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.wfile.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                          % accept).encode())
        self.wfile.flush()
        self.close_connection = True
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, size = head[0] & 0x0F, head[1] & 0x7F
            if size == 126:
                size = int.from_bytes(self.rfile.read(2), "big")
            elif size == 127:
                size = int.from_bytes(self.rfile.read(8), "big")
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(size)))
            if opcode == 8:
                self.wfile.write(b"\x88\x00")
                self.wfile.flush()
                return
            ext = bytes([len(data)]) if len(data) < 126 else \
                b"\x7e" + len(data).to_bytes(2, "big")
            self.wfile.write(bytes([0x80 | opcode]) + ext + data)
            self.wfile.flush()

    def _send(self, out: Reply) -> None:
        if out.reset:
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.server.resets.add(self.connection)
            return
        if out.abort:
            self.close_connection = True
            return
        self.send_response(out.status)
        names = {k.lower() for k, _ in out.headers}
        for k, v in out.headers:
            self.send_header(k, v)
        if "content-type" not in names:
            self.send_header("Content-Type", "text/plain")
        head = self.command == "HEAD" or out.status in (204, 304)
        if out.chunked and not head:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for c in out.chunks:
                if c:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            payload = b"".join(out.chunks)
            if out.status not in (204, 304):
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if not head:
                self.wfile.write(payload)
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    mock: "MockUpstream"

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)
        self.resets: set[socket.socket] = set()  #: connections to end with an RST

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        if request in self.resets:
            self.resets.discard(request)
            request.close()   # no shutdown(): SO_LINGER 0 makes this close an RST
            return
        super().shutdown_request(request)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client (the gateway) that goes away mid-response is normal here (aborted or
        timed-out requests, TERM tests); anything else is worth a line in the log."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            self.mock.log("error", f"mock upstream error from {client_address}: {exc!r}")


class _TLSServer(_Server):
    """The TLS listener: the handshake runs in the request's thread."""

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(CERTS, "test.crt"), os.path.join(CERTS, "test.key"))
        ctx.load_verify_locations(os.path.join(CERTS, "mtls_ca.crt"))
        ctx.verify_mode = ssl.CERT_OPTIONAL

        def remember(sslobj: object, name: str | None, _ctx: object) -> None:
            sslobj.mock_sni = name  # type: ignore[attr-defined]
        ctx.sni_callback = remember
        self.context = ctx

    def finish_request(self, request: socket.socket, client_address: object) -> None:
        request.settimeout(10)
        try:
            conn = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()


def _sni(r: Req, o: Reply) -> None:
    o.say(getattr(r.conn, "mock_sni", None) or "none")


def _client_cert(r: Req, o: Reply) -> None:
    peer = r.conn.getpeercert() if hasattr(r.conn, "getpeercert") else None
    cn = [v for rdn in (peer or {}).get("subject", ()) for k, v in rdn if k == "commonName"]
    o.say(cn[0] if cn else "none")


HANDLERS.update({"sni": _sni, "client_cert": _client_cert})


class MockUpstream:
    """The three listeners plus the arrival counters the runner awaits."""

    def __init__(self, ports: tuple[int, ...] = PORTS, host: str = "127.0.0.1",
                 tls_port: int | None = -1):
        self.ports, self.host = ports, host
        #: the TLS listener's port (default: TLS_PORT with the default ports, else none)
        self.tls_port = (TLS_PORT if ports == PORTS else None) if tls_port == -1 else tls_port
        self.bound_ports: list[int] = []      #: the real ports (differs when 0 was asked)
        self.log_path: str | None = None
        self._servers: list[_Server] = []
        self._arrived: Counter[str] = Counter()
        self._cond = threading.Condition()
        self._log_lock = threading.Lock()

    def start(self) -> None:
        ports = [(p, _Server) for p in self.ports]
        if self.tls_port is not None:
            ports.append((self.tls_port, _TLSServer))
        for port, kind in ports:
            try:
                srv = kind((self.host, port), _Handler)
            except OSError as e:
                self.stop()
                raise RuntimeError(f"mock upstream cannot listen on {self.host}:{port}: {e} "
                                   f"(is another test run using it?)") from None
            srv.mock = self
            self._servers.append(srv)
            self.bound_ports.append(srv.server_address[1])
            threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                             name=f"mock-upstream-{port}", daemon=True).start()

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        self._servers.clear()
        self.bound_ports.clear()

    # -- observation ----------------------------------------------------------------------
    def record(self, req: Req) -> None:
        with self._cond:
            self._arrived[req.path] += 1
            self._cond.notify_all()

    def arrivals(self, path: str) -> int:
        with self._cond:
            return self._arrived[path]

    def wait_for_arrival(self, path: str, more_than: int, timeout: float) -> bool:
        """Block until `path` has been requested more than `more_than` times, or time out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._arrived[path] <= more_than:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def log(self, level: str, message: str) -> None:
        path = self.log_path
        if not path:
            return
        stamp = time.strftime("%Y/%m/%d %H:%M:%S")
        line = f"{stamp} [{level}] {os.getpid()}#0: [mock upstream] {message}\n"
        with self._log_lock:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError:
                return
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)


def main() -> None:
    """`python t/lib/mock_upstream.py [--port N ...]`: the demo upstream `make run` starts."""
    import argparse
    parser = argparse.ArgumentParser(description="APISIX-style mock upstream")
    parser.add_argument("--port", type=int, action="append", help="port (repeatable)")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    mock = MockUpstream(tuple(args.port or PORTS), args.host)
    mock.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        mock.stop()


if __name__ == "__main__":
    main()
