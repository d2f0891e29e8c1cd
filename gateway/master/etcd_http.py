"""Keep-alive HTTP/1.1 POSTs of JSON to etcd, for the client's unary calls.

Why not `requests`: every Admin API write costs the master one or two etcd calls, and a
`requests.Session.post` spent most of the master's CPU per write (request preparation, hooks,
cookie jars, proxy lookups, adapter and urllib3 layers) for a call whose shape never changes.
Client CPU per keep-alive POST on loopback, measured: requests ~580 µs, urllib3's
connection pool used directly ~240-290 µs, `http.client` ~120-200 µs. So this transport is
the standard library's `http.client` with one connection kept per (thread, endpoint), and
nothing else. The long-lived watch stream still uses `requests` (one call per watch, not per write).

TLS follows the same settings as the requests session: the CA bundle (`ca_file`, else
certifi's, as `requests` would), a client certificate, `verify: false`, and a fixed server
name for `tls.sni`. Like `requests` with `trust_env = False`, nothing is taken from the
environment (no REQUESTS_CA_BUNDLE, no proxies). As urllib3 does, a pooled connection that
the server closed while idle is replaced before use, and a request is never retried on
another connection once sent: the caller's failover decides.
"""

from __future__ import annotations

import http.client
import json
import select
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit


class TransportError(Exception):
    """The endpoint could not be reached or did not answer (refused, timed out, reset)."""


class Reply:
    """What `requests.Response` offered the client: a status, the body and `json()`."""

    __slots__ = ("status_code", "content")

    def __init__(self, status_code: int, content: bytes):
        self.status_code = status_code
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)

    def close(self) -> None:
        """Nothing to release: the body is read in full."""


class Endpoint:
    """One `deployment.etcd.host` entry, parsed once."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TransportError("unsupported etcd endpoint (http:// or https:// expected)")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.base = parts.path.rstrip("/")
        default_port = 443 if self.tls else 80
        name = "[%s]" % self.host if ":" in self.host else self.host
        self.host_header = name if self.port == default_port else "%s:%d" % (name, self.port)


class Transport:
    def __init__(self, connect_timeout: float, read_timeout: float, verify: bool = True,
                 ca_file: str | None = None, cert: str | None = None, key: str | None = None,
                 sni: str | None = None):
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.sni = sni
        self._verify, self._ca_file, self._cert, self._key = verify, ca_file, cert, key
        self._ssl: ssl.SSLContext | None = None
        self._endpoints: dict[str, Endpoint] = {}
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def ssl_context(self) -> ssl.SSLContext:
        """Built on first use: plain-http setups never read a certificate file."""
        if self._ssl is None:
            if self._verify:
                ctx = ssl.create_default_context(cafile=self._ca_file or _certifi())
            else:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if self._cert:
                ctx.load_cert_chain(self._cert, self._key or None)
            self._ssl = ctx
        return self._ssl

    def endpoint(self, url: str) -> Endpoint:
        ep = self._endpoints.get(url)
        if ep is None:
            ep = self._endpoints[url] = Endpoint(url)
        return ep

    def post(self, url: str, path: str, body: bytes, headers: dict[str, str]) -> Reply:
        """POST `body` (JSON) to `url + path`; raise TransportError when there is no answer."""
        ep = self.endpoint(url)
        conn = self._connection(url, ep)
        try:
            conn.putrequest("POST", ep.base + path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", ep.host_header)
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(body)))
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders(body)
            resp = conn.getresponse()
            content = resp.read()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._drop(url, conn)
            raise TransportError(_reason(exc)) from None
        if resp.will_close:
            self._drop(url, conn)
        return Reply(resp.status, content)

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    # ------------------------------------------------------------------ connections
    def _connection(self, url: str, ep: Endpoint) -> http.client.HTTPConnection:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        conn = pool.get(url)
        if conn is not None and _dropped(conn):
            self._drop(url, conn)
            conn = None
        if conn is None:
            conn = self._connect(ep)
            pool[url] = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _connect(self, ep: Endpoint) -> http.client.HTTPConnection:
        try:
            if ep.tls:
                conn: http.client.HTTPConnection = _TLSConnection(
                    ep.host, ep.port, timeout=self.connect_timeout,
                    context=self.ssl_context(), server_name=self.sni or ep.host)
            else:
                conn = http.client.HTTPConnection(ep.host, ep.port, timeout=self.connect_timeout)
            conn.connect()
        except (OSError, ValueError) as exc:
            raise TransportError(_reason(exc, connecting=True)) from None
        conn.sock.settimeout(self.read_timeout)
        return conn

    def _drop(self, url: str, conn: http.client.HTTPConnection) -> None:
        conn.close()
        pool = getattr(self._local, "pool", None)
        if pool is not None and pool.get(url) is conn:
            del pool[url]
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)


class _TLSConnection(http.client.HTTPConnection):
    """HTTPS with an explicit server name (SNI and hostname check), for `tls.sni`."""

    default_port = 443

    def __init__(self, host: str, port: int, timeout: float, context: ssl.SSLContext,
                 server_name: str):
        super().__init__(host, port, timeout=timeout)
        self._context, self._server_name = context, server_name

    def connect(self) -> None:
        super().connect()
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_name)


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle pooled connection was closed by the server (readable = EOF/garbage)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _reason(exc: BaseException, connecting: bool = False) -> str:
    """A one-line reason; never a header (the auth token) or a body."""
    if isinstance(exc, TimeoutError):
        return ("connect timed out" if connecting else "read timed out")
    text = str(exc) or exc.__class__.__name__
    return text[:200]


def _certifi() -> str | None:
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()
