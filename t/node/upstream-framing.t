# How upstream responses are framed for the client, byte for byte from a raw upstream:
# the usual whole response (one Content-Length, HTTP/1.1) and everything that is not
# (split reads, Connection: close, HTTP/1.0, no reason phrase, bad header lines, two
# Content-Lengths), on connections that are reused between responses.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: a route to a raw upstream the next block runs on 1991
--- apisix_yaml
routes:
  - id: raw
    uri: /raw/*
    upstream:
      nodes:
        "127.0.0.1:1991": 1
#END
--- request
GET /raw/none
--- error_code: 502
--- error_log
(111: Connection refused) while connecting to upstream



=== TEST 2: each answer as the client sees it, and which upstream connection it came on
--- exec
$PYTHON - <<'PY'
import os, socket, sys, threading
ANSWERS = {
    b"/raw/plain": [b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Up: a\r\n"
                    b"Content-Length: 5\r\n\r\nhello"],
    b"/raw/again": [b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Up: a\r\n"
                    b"Content-Length: 5\r\n\r\nagain"],
    b"/raw/split": [b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\nfirst", b"-half"],
    b"/raw/noreason": [b"HTTP/1.1 404\r\nContent-Length: 4\r\n\r\nnope"],
    b"/raw/obs": [b"HTTP/1.1 200 OK\r\nX-Latin: caf\xe9\r\nContent-Length: 2\r\n\r\nok"],
    b"/raw/close": [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye"],
    b"/raw/http10": [b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold"],
    b"/raw/badname": [b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nno"],
    b"/raw/twolengths": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nno!"],
    b"/raw/badstatus": [b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nno"],
}
srv = socket.create_server(("127.0.0.1", 1991))
conns = []
def handle(c, n):
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                c.close()
                return
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        path = head.split(b" ")[1]
        conns.append(n)
        parts = ANSWERS[path]
        for i, part in enumerate(parts):
            if i:
                threading.Event().wait(0.05)  # a second read for the gateway
            c.sendall(part)
        if path in (b"/raw/close", b"/raw/http10"):
            c.close()
            return
def serve():
    n = 0
    while True:
        c, _ = srv.accept()
        n += 1
        threading.Thread(target=handle, args=(c, n), daemon=True).start()
threading.Thread(target=serve, daemon=True).start()
sys.path.insert(0, os.environ["REPO"])
from t.lib.http_client import exchange
def get(path):
    r = exchange(b"GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path)[0]
    keep = ["%s: %s" % (k, v) for k, v in r.headers
            if k in ("Content-Type", "Content-Length", "X-Up", "X-Latin")]
    return "%s %d %s" % (r.version, r.status, r.reason), keep, r.body
for path in (b"/raw/plain", b"/raw/again", b"/raw/split", b"/raw/noreason", b"/raw/obs",
             b"/raw/close", b"/raw/plain", b"/raw/http10", b"/raw/plain", b"/raw/badname",
             b"/raw/plain", b"/raw/twolengths", b"/raw/plain", b"/raw/badstatus"):
    status, headers, body = get(path)
    if status.endswith("502 Bad Gateway"):
        headers, body = [], b"(the gateway's page)"
    print(path.decode(), status, headers, body, "conn", conns[-1] if conns else None)
PY
--- response_body
/raw/plain HTTP/1.1 200 OK ['Content-Type: text/plain', 'X-Up: a', 'Content-Length: 5'] b'hello' conn 1
/raw/again HTTP/1.1 200 OK ['Content-Type: text/plain', 'X-Up: a', 'Content-Length: 5'] b'again' conn 1
/raw/split HTTP/1.1 201 Created ['Content-Length: 10'] b'first-half' conn 1
/raw/noreason HTTP/1.1 404 Not Found ['Content-Length: 4'] b'nope' conn 1
/raw/obs HTTP/1.1 200 OK ['X-Latin: café', 'Content-Length: 2'] b'ok' conn 1
/raw/close HTTP/1.1 200 OK ['Content-Length: 3'] b'bye' conn 1
/raw/plain HTTP/1.1 200 OK ['Content-Type: text/plain', 'X-Up: a', 'Content-Length: 5'] b'hello' conn 2
/raw/http10 HTTP/1.1 200 OK ['Content-Length: 3'] b'old' conn 2
/raw/plain HTTP/1.1 200 OK ['Content-Type: text/plain', 'X-Up: a', 'Content-Length: 5'] b'hello' conn 3
/raw/badname HTTP/1.1 502 Bad Gateway [] b"(the gateway's page)" conn 3
/raw/plain HTTP/1.1 200 OK ['Content-Type: text/plain', 'X-Up: a', 'Content-Length: 5'] b'hello' conn 4
/raw/twolengths HTTP/1.1 502 Bad Gateway [] b"(the gateway's page)" conn 4
/raw/plain HTTP/1.1 200 OK ['Content-Type: text/plain', 'X-Up: a', 'Content-Length: 5'] b'hello' conn 5
/raw/badstatus HTTP/1.1 502 Bad Gateway [] b"(the gateway's page)" conn 5
--- error_log
upstream sent invalid response
