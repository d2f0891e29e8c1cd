"""TLS on the callback-driven data path: a socket-shaped adaptor over ``ssl.SSLObject``.

The data path (http.py, upstream.py, tunnel.py) drives raw non-blocking sockets from libev
readiness callbacks and calls only ``recv``/``send``/``close``/``shutdown``/``fileno`` on
them. :class:`TLSSocket` offers the same calls over an ``SSLObject`` with two memory BIOs,
so the same callback code serves TLS connections, and plain connections pay nothing (the
TLS class is chosen at accept or connect, never tested per request):

* ``recv`` reads ciphertext from the socket, completes the handshake when it is not done,
  and returns *all* the plaintext that ciphertext decrypts to. Nothing stays buffered inside
  OpenSSL where libev could not see it, so a stopped read watcher never strands a request.
  No plaintext yet (a handshake step, a partial record) is ``BlockingIOError``.
* ``send`` encrypts and sends. When the socket takes only part of the ciphertext, the rest
  is kept here and the call reports one plaintext byte fewer than it was given: the caller
  then keeps that byte pending and waits for writability as it does with a plain socket;
  the next ``send`` (which starts with that byte) flushes the kept ciphertext first and
  drops the byte, which was encrypted already. Back-pressure and ``send_timeout`` work as
  for plain connections.
* Ciphertext produced while reading (handshake flights, alerts) is flushed at once, or by a
  write watcher of our own when the socket is full.
* On the client side (upstreams), plaintext sent before the handshake finished is held and
  written when it completes.

A TLS error is a :class:`TLSError` (an ``OSError``): callers already treat those as a dead
connection. The handshake's deadline is the connection's: a client that does not finish it
is closed by the sweep like one that never sends a request (``client_header_timeout``).
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Callable
from typing import Any

from gateway.core.log import log
from gateway.worker.http import Client

RECV_SIZE = 65536


class TLSError(OSError):
    """A failed handshake or a broken TLS stream."""


class TLSSocket:
    __slots__ = ("sock", "ssl", "inc", "out", "raw", "held", "done", "early", "loop", "fw",
                 "on_handshake")

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_side: bool,
                 loop: Any, server_hostname: str | None = None,
                 on_handshake: Callable[[TLSSocket], None] | None = None):
        self.sock = sock
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.ssl = context.wrap_bio(self.inc, self.out, server_side=server_side,
                                    server_hostname=server_hostname)
        self.raw: memoryview | bytes | None = None   # ciphertext the socket did not take
        self.held = 0          # 1: the caller's next send starts with a byte sent already
        self.done = False      # handshake complete
        self.early: list[bytes] | None = None
        self.loop = loop
        self.fw = None         # our write watcher, for ciphertext made while reading
        self.on_handshake = on_handshake

    # ---- socket-like surface
    def fileno(self) -> int:
        return self.sock.fileno()

    def getsockopt(self, *args: Any) -> Any:
        return self.sock.getsockopt(*args)

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)

    def close(self) -> None:
        if self.fw is not None:
            self.fw.stop()
        if self.done:
            try:                        # close_notify, best effort (nginx's ssl_shutdown)
                self.ssl.unwrap()
            except (ssl.SSLError, ValueError):
                pass
            try:
                self._flush()
            except OSError:
                pass
        self.sock.close()

    def start_handshake(self) -> None:
        """Client side: send the ClientHello now (the rest is driven by ``recv``)."""
        self._step()

    # ---- reading
    def recv(self, size: int = RECV_SIZE, flags: int = 0) -> bytes:
        if flags:                       # MSG_PEEK: is anything on the wire at all
            return self.sock.recv(size, flags)
        data = self.sock.recv(size)     # BlockingIOError / OSError go to the caller
        if not data:
            return b""
        self.inc.write(data)
        if not self.done and not self._step():
            raise BlockingIOError(errno.EAGAIN, "TLS handshake in progress")
        chunks = []
        read = self.ssl.read
        try:
            while True:
                piece = read(RECV_SIZE)
                if not piece:
                    break
                chunks.append(piece)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:   # close_notify: an EOF after what we have
            if not chunks:
                return b""
        except ssl.SSLError as e:
            raise TLSError(0, "SSL_read() failed: %s" % (e.reason or e)) from None
        if self.out.pending:            # TLS 1.3 key update and the like
            self._flush_soon()
        if not chunks:
            raise BlockingIOError(errno.EAGAIN, "no complete TLS record yet")
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _step(self) -> bool:
        """One handshake step; True when it completed (now or before)."""
        try:
            self.ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush_soon()
            return False
        except ssl.SSLError as e:
            try:
                self._flush()           # the alert, best effort
            except OSError:
                pass
            raise TLSError(0, "SSL_do_handshake() failed: %s"
                           % (getattr(e, "verify_message", None) or e.reason or e)) from None
        self.done = True
        if self.on_handshake is not None:
            try:
                self.on_handshake(self)     # may raise TLSError to refuse the connection
            except TLSError:
                self.done = False           # refused: not even our Finished goes out
                raise
        early = self.early
        if early is not None:
            self.early = None
            for piece in early:
                self.ssl.write(piece)
        self._flush_soon()
        return True

    # ---- writing
    def send(self, data: Any) -> int:
        if self.raw is not None and not self._flush():
            raise BlockingIOError(errno.EAGAIN, "TLS ciphertext pending")
        extra = 0
        if self.held:
            self.held = 0
            data = data[1:]
            extra = 1
        if not data:
            return extra
        if not self.done:
            # client side before the handshake finished: written when it completes
            if self.early is None:
                self.early = []
                self._step()            # the ClientHello
            self.early.append(bytes(data))
            return len(data) + extra
        self.ssl.write(data)
        if self._flush():
            return len(data) + extra
        self.held = 1
        return len(data) + extra - 1

    def _flush(self) -> bool:
        """Send the ciphertext there is; True when the socket took it all."""
        raw = self.raw
        if self.out.pending:
            fresh = self.out.read()
            raw = fresh if raw is None else bytes(raw) + fresh
        if raw is None:
            return True
        try:
            n = self.sock.send(raw)
        except (BlockingIOError, InterruptedError):
            n = 0
        if n >= len(raw):
            self.raw = None
            return True
        self.raw = memoryview(raw)[n:]
        return False

    def _flush_soon(self) -> None:
        try:
            if self._flush():
                return
        except OSError:
            return                      # the read side sees the broken connection
        if self.fw is None:
            self.fw = self.loop.io(self.sock.fileno(), 2)
        self.fw.start(self._on_writable)

    def _on_writable(self) -> None:
        try:
            if self._flush():
                self.fw.stop()
        except OSError:
            self.fw.stop()


# ---------------------------------------------------------------------- downstream


class TlsClient(Client):
    """A client connection accepted on a TLS listener (``apisix.ssl.listen``).

    Everything per byte is :class:`TLSSocket`'s; per request it adds APISIX's check of the
    client certificate against the Host (``verify_https_client``): the `ssls` object the
    Host matches, when it has ``client`` (mTLS), requires a verified client certificate
    (unless the URI matches its ``skip_mtls_uri_regex``) and the Host to be the SNI the
    connection was admitted with; otherwise 400. So a client cannot pass mTLS for one name
    and send requests for another."""

    __slots__ = ("sni", "cert", "peer_ok")

    scheme = "https"
    proto = b"https"

    def __init__(self, server: Any, sock: socket.socket, remote: bytes, listener: Any):
        self.sni = None          # the server name the client sent (bytes, lowercase)
        self.cert = None         # gateway.worker.tls.Certificate that admitted it
        self.peer_ok = False     # a client certificate was presented and verified
        tls = TLSSocket(sock, listener.context, True, server.loop,
                        on_handshake=self._admitted)
        super().__init__(server, tls, remote, listener)

    def _admitted(self, tls: TLSSocket) -> None:
        sslobj = tls.ssl
        cert = getattr(sslobj, "gateway_cert", None)
        self.cert = cert
        name = getattr(sslobj, "gateway_sni", None)
        self.sni = name.lower().encode() if name else None
        if cert is not None and cert.protocols is not None \
                and sslobj.version() not in cert.protocols:
            raise TLSError(0, "protocol %s not allowed for this certificate" % sslobj.version())
        self.peer_ok = sslobj.getpeercert(binary_form=True) is not None

    def start(self, req: Any) -> None:
        host = req.host
        if host:
            found = self.server.table.certs.find(host.decode("latin-1"))
            if found is not None and found.client is not None and not self._may(req, found):
                self.active = req
                self.nreq += 1
                self.respond(req, 400)
                return
        Client.start(self, req)

    def _may(self, req: Any, cert: Any) -> bool:
        """APISIX's verify_https_client for a Host whose certificate asks for mTLS."""
        if cert.skip_mtls:
            path = req.path.decode("latin-1")
            if any(rx.search(path) for rx in cert.skip_mtls):
                return True
        if not self.peer_ok:
            log.error("client certificate was not present")
            return False
        if self.sni != req.host:
            log.error("client certificate verified with SNI %s, but the host is %s",
                      (self.sni or b"").decode("latin-1"), req.host.decode("latin-1"))
            return False
        return True
