# WebSocket: with enable_websocket the Upgrade is forwarded, the upstream's 101 passed
# through, then bytes piped both ways; without it, Upgrade is a hop-by-hop header dropped.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: without enable_websocket the Upgrade header does not reach the upstream
--- apisix_yaml
services:
  - id: ws-svc
    enable_websocket: true
    upstream:
      nodes:
        "127.0.0.1:1980": 1
routes:
  - id: ws
    uri: /websocket
    enable_websocket: true
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: ws-by-service
    uri: /websocket_svc
    service_id: ws-svc
  - id: no-ws
    uri: /websocket_off
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: uri
    uri: /uri
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /uri
--- more_headers
Upgrade: websocket
Connection: Upgrade
--- response_body_unlike
(?i)upgrade



=== TEST 2: handshake and echo through the gateway (route enable_websocket)
--- exec
cat > ws_client.py <<'PY'
import os, socket, sys
def frame(payload, opcode=1):
    mask = os.urandom(4)
    n = len(payload)
    ext = bytes([0x80 | n]) if n < 126 else b"\xfe" + n.to_bytes(2, "big")
    return bytes([0x80 | opcode]) + ext + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
def read_exact(s, n, buf):
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            raise EOFError
        buf += d
    return buf[:n], buf[n:]
path = sys.argv[1]
s = socket.create_connection(("127.0.0.1", 1984))
s.settimeout(5)
# the first frame rides in the same packet as the handshake
s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
          % path.encode() + frame(b"first"))
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(65536)
head, buf = buf.split(b"\r\n\r\n", 1)
lines = head.decode().split("\r\n")
print(lines[0])
print([l for l in lines if l.lower().startswith(("upgrade", "connection", "sec-websocket-accept"))])
if not lines[0].startswith("HTTP/1.1 101"):
    sys.exit(0)
for payload in (b"", b"hello", b"x" * 5000):
    if payload:
        s.sendall(frame(payload))
for _ in range(3):
    h, buf = read_exact(s, 2, buf)
    n = h[1] & 0x7F
    if n == 126:
        ext, buf = read_exact(s, 2, buf)
        n = int.from_bytes(ext, "big")
    data, buf = read_exact(s, n, buf)
    print(h[0] & 0x0F, data[:10].decode(), len(data))
s.sendall(frame(b"", 8))
h, buf = read_exact(s, 2, buf)
print("close", hex(h[0]))
rest = buf
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        rest += d
    print("eof")
except OSError as e:
    print("error", e)
PY
$PYTHON ws_client.py /websocket && $PYTHON ws_client.py /websocket_svc && $PYTHON ws_client.py /websocket_off
--- response_body
HTTP/1.1 101 Switching Protocols
['Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=', 'Upgrade: websocket', 'Connection: upgrade']
1 first 5
1 hello 5
1 xxxxxxxxxx 5000
close 0x88
eof
HTTP/1.1 101 Switching Protocols
['Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=', 'Upgrade: websocket', 'Connection: upgrade']
1 first 5
1 hello 5
1 xxxxxxxxxx 5000
close 0x88
eof
HTTP/1.1 404 Not Found
['Connection: keep-alive']
