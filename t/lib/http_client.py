"""A raw-socket HTTP/1.1 client that sends exactly what a `.t` block says.

Library clients normalise requests (they add headers, reject malformed lines, pool
connections); a gateway test needs the opposite: the bytes on the wire are part of the test.
So requests are built the way Test::Nginx builds them (`Host: localhost`, `Connection: close`
unless the block sets them, `Content-Length` for a body) and responses are parsed by hand:
status, headers in order (case-insensitive lookup, repeated names kept), body by
Content-Length, chunked encoding or connection close. Several responses can be read from one
connection for pipelined requests.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"
PORT = 1984


class HttpError(Exception):
    """No (complete) response: refused, reset, closed early, timed out, or unparsable."""


@dataclass
class Response:
    status: int | None
    reason: str = ""
    version: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    raw_headers: str = ""

    def header(self, name: str) -> str | None:
        """All values of `name` joined with ", " (as HTTP::Headers does), or None."""
        values = self.header_all(name)
        return ", ".join(values) if values else None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "surrogateescape")


@dataclass
class RequestLine:
    method: str
    target: str
    version: str
    body: str


def to_bytes(text: str) -> bytes:
    """Test text is UTF-8 on the wire, as the bytes of a Perl source file would be."""
    return text.encode("utf-8", "surrogateescape")


def parse_request_text(text: str) -> RequestLine:
    """`METHOD [TARGET [HTTP/x.y]]` on the first line (after comment lines), body after."""
    text = re.sub(r"\A(\s*#[^\n]*\n|\s+)+", "", text)
    first, _, body = text.partition("\n")
    parts = first.split()
    if not parts:
        raise ValueError("the request line is empty")
    if len(parts) > 3:
        raise ValueError(f"bad request line {first!r}: expected 'METHOD [URI [VERSION]]'")
    method = parts[0]
    target = parts[1] if len(parts) > 1 else "/"
    version = parts[2] if len(parts) > 2 else "HTTP/1.1"
    return RequestLine(method, target, version, body)


def parse_header_lines(text: str) -> list[tuple[str, str]]:
    """`Name: value` lines; blank and `#` lines skipped; the value may be empty."""
    out: list[tuple[str, str]] = []
    for line in re.split(r"\n+", text):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, value = line.partition(":")
        out.append((name.strip(), value.strip()))
    return out


def build_request(text: str, more_headers: str = "", connection: str = "close",
                  host: str = "localhost") -> bytes:
    """Bytes for one request written as in a `--- request` section."""
    req = parse_request_text(text)
    extra = parse_header_lines(more_headers)
    names = {k.lower() for k, _ in extra}
    chunked = any(k.lower() == "transfer-encoding" and v.lower() == "chunked" for k, v in extra)
    body = req.body
    lines = [f"{req.method} {req.target} {req.version}"]
    if "host" not in names:
        lines.append(f"Host: {host}")
    if "connection" not in names:
        lines.append(f"Connection: {connection}")
    lines += [f"{k}: {v}" for k, v in extra]
    if body.strip() and not chunked and "content-length" not in names:
        body = body.strip()
        lines.append(f"Content-Length: {len(to_bytes(body))}")
    return to_bytes("\r\n".join(lines) + "\r\n\r\n" + body)


def is_head(raw: bytes) -> bool:
    return raw.lstrip().upper().startswith(b"HEAD ")


class _Reader:
    """Buffered reads from one socket under one deadline."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock, self.deadline = sock, deadline
        self.buf = bytearray()
        self.eof = False

    def fill(self) -> bool:
        if self.eof:
            return False
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise HttpError("timed out waiting for the response")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise HttpError("timed out waiting for the response") from None
        except ConnectionResetError:
            raise HttpError("connection reset by the gateway") from None
        except OSError as e:
            raise HttpError(f"read failed: {e}") from None
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def line(self) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                out = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return out
            if not self.fill():
                raise HttpError("connection closed in the middle of the response head"
                                if self.buf else "connection closed before any response")

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self.fill():
                raise HttpError(f"connection closed with the body incomplete "
                                f"({len(self.buf)} of {n} bytes)")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def rest(self) -> bytes:
        while self.fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out


def read_response(reader: _Reader, head: bool = False) -> Response:
    while True:
        status_line = reader.line().decode("latin-1").rstrip("\r\n")
        m = re.match(r"(HTTP/\d(?:\.\d)?) (\d{3})(?: (.*))?$", status_line)
        if not m:
            raise HttpError(f"bad status line {status_line!r}")
        raw: list[str] = [status_line]
        headers: list[tuple[str, str]] = []
        while True:
            ln = reader.line().decode("latin-1").rstrip("\r\n")
            if not ln:
                break
            raw.append(ln)
            if ln[0] in " \t" and headers:   # obsolete line folding
                k, v = headers[-1]
                headers[-1] = (k, v + " " + ln.strip())
                continue
            k, _, v = ln.partition(":")
            headers.append((k.strip(), v.strip()))
        status = int(m.group(2))
        resp = Response(status, m.group(3) or "", m.group(1), headers,
                        raw_headers="\r\n".join(raw) + "\r\n")
        if 100 <= status < 200 and status != 101:
            continue                          # interim response: the real one follows
        break
    te = (resp.header("transfer-encoding") or "").lower()
    cl = resp.header("content-length")
    if head or status in (204, 304) or 100 <= status < 200:
        return resp
    if "chunked" in te:
        parts: list[bytes] = []
        while True:
            size_line = reader.line().decode("latin-1").split(";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise HttpError(f"bad chunk size line {size_line!r}") from None
            if size == 0:
                while reader.line() not in (b"\r\n", b"\n"):
                    pass                      # trailers
                break
            parts.append(reader.exactly(size))
            reader.line()
        resp.body = b"".join(parts)
    elif cl is not None:
        try:
            n = int(cl.split(",")[0])
        except ValueError:
            raise HttpError(f"bad Content-Length {cl!r}") from None
        resp.body = reader.exactly(n)
    else:
        resp.body = reader.rest()
    return resp


def connect(timeout: float, host: str = HOST, port: int = PORT) -> socket.socket:
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise HttpError(f"connection refused by {host}:{port}") from None
    except socket.timeout:
        raise HttpError(f"timed out connecting to {host}:{port}") from None
    except OSError as e:
        raise HttpError(f"cannot connect to {host}:{port}: {e}") from None


def exchange(raw: bytes, count: int = 1, timeout: float = 5.0, heads: list[bool] | None = None,
             host: str = HOST, port: int = PORT) -> list[Response | HttpError]:
    """Send `raw` on a new connection, read `count` responses (pipelining when > 1).

    Returns one entry per expected response: a Response, or the HttpError that stopped the
    read (later entries then repeat that error, since the connection is gone)."""
    deadline = time.monotonic() + timeout
    heads = heads or [is_head(raw)] * count
    out: list[Response | HttpError] = []
    try:
        sock = connect(timeout, host, port)
    except HttpError as e:
        return [e] * count
    with sock:
        try:
            sock.sendall(raw)
        except OSError as e:
            # The server may answer and close before reading everything (e.g. 413): still try.
            err: HttpError | None = HttpError(f"send failed: {e}")
        else:
            err = None
        reader = _Reader(sock, deadline)
        for i in range(count):
            try:
                out.append(read_response(reader, heads[i]))
            except HttpError as e:
                out.extend([err or e] * (count - i))
                break
    return out
