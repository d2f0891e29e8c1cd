"""TLSSocket, the data path's TLS adaptor: a real handshake over a socketpair, then a large
stream sent the way the data path sends (partial sends resumed with the unsent rest, on
writability) through a deliberately small socket buffer: the peer must read exactly the
stream, which exercises the "one byte held back" bookkeeping of partial ciphertext sends."""

from __future__ import annotations

import os
import select
import socket
import ssl
import threading
from pathlib import Path

from gateway.worker.tlsio import TLSSocket

CERTS = Path(__file__).resolve().parents[1] / "certs"


def _pair():
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    a.setblocking(False)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERTS / "test.crt", CERTS / "test.key")
    server = TLSSocket(a, ctx, True, loop=None)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    return server, b, cctx


def _handshake(server, plain, cctx, got):
    def client():
        conn = cctx.wrap_socket(plain, server_hostname="test.com")
        got.append(conn)
    t = threading.Thread(target=client)
    t.start()
    while not server.done:
        select.select([server.sock], [], [], 5)
        try:
            server.recv()
        except BlockingIOError:
            pass
    t.join(5)
    return got[0]


def test_large_stream_through_partial_sends():
    server, plain, cctx = _pair()
    conn = _handshake(server, plain, cctx, [])
    payload = os.urandom(3 << 20)
    received = bytearray()

    def reader():
        while len(received) < len(payload):
            chunk = conn.recv(65536)
            if not chunk:
                break
            received.extend(chunk)
    t = threading.Thread(target=reader)
    t.start()
    rest = memoryview(payload)
    partial = 0
    while rest:
        select.select([], [server.sock], [], 5)
        try:
            n = server.send(rest[:200000])
        except BlockingIOError:
            continue
        if n < min(len(rest), 200000):
            partial += 1
        rest = rest[n:]
    t.join(10)
    assert bytes(received) == payload
    assert partial > 0            # the small buffer did force partial sends


def test_recv_returns_everything_decrypted():
    server, plain, cctx = _pair()
    conn = _handshake(server, plain, cctx, [])
    conn.sendall(b"a" * 50000)     # several TLS records in one go
    got = b""
    while len(got) < 50000:
        select.select([server.sock], [], [], 5)
        try:
            got += server.recv()
        except BlockingIOError:
            pass
    assert got == b"a" * 50000 and server.ssl.pending() == 0
    conn.close()
