"""The etcd client's unary transport against a local HTTP/1.1 server: keep-alive reuse, a
connection the server closed, refusals and timeouts as TransportError."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.master.etcd_http import Transport, TransportError


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    peers: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Handler.peers.append(self.client_address)
        if self.path == "/slow":
            threading.Event().wait(1.0)
        out = json.dumps({"path": self.path, "got": json.loads(body),
                          "auth": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        if self.path == "/close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Handler.peers = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_posts_reuse_one_connection_and_send_headers(server):
    transport = Transport(1.0, 2.0)
    for i in range(3):
        reply = transport.post(server, "/v3/kv/range", b'{"n":%d}' % i, {"Authorization": "t"})
        assert reply.status_code == 200
        assert reply.json() == {"path": "/v3/kv/range", "got": {"n": i}, "auth": "t"}
    assert len({peer for peer in Handler.peers}) == 1
    transport.close()


def test_a_connection_the_server_closed_is_replaced(server):
    transport = Transport(1.0, 2.0)
    assert transport.post(server, "/close", b"{}", {}).status_code == 200
    assert transport.post(server, "/x", b"{}", {}).json()["path"] == "/x"
    assert len(set(Handler.peers)) == 2


def test_refused_and_timed_out_are_transport_errors(server):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(TransportError, match="refused"):
        Transport(1.0, 1.0).post("http://127.0.0.1:%d" % port, "/x", b"{}", {})
    with pytest.raises(TransportError, match="timed out"):
        Transport(1.0, 0.2).post(server, "/slow", b"{}", {})
