# Request bodies stream to the upstream in bounded memory: the head goes out as soon as the
# route is known, body pieces follow as they arrive, with back-pressure both ways.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: a 5 MB POST is echoed back whole
--- apisix_yaml
routes:
  - id: echo
    uri: /echo
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: size
    uri: /body_size
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: hello
    uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request eval
"POST /echo\n" . ("a" x 5000000)
--- response_body eval
"a" x 5000000



=== TEST 2: 300 MB streamed through one worker whose memory stays under 150 MB
--- exec
$PYTHON - <<'PY'
import os, socket, subprocess
master = open("logs/gateway.pid").read().strip()
pids = subprocess.run(["pgrep", "-P", master], capture_output=True, text=True).stdout.split()
def rss():
    out = 0
    for pid in pids:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                out = max(out, int(line.split()[1]) // 1024)
    return out
total = 300 * 1024 * 1024
s = socket.create_connection(("127.0.0.1", 1984))
s.sendall(b"POST /body_size HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
          b"Content-Length: %d\r\n\r\n" % total)
piece = b"x" * (1 << 20)
peak = 0
for i in range(300):
    s.sendall(piece)
    if i % 20 == 0:
        peak = max(peak, rss())
resp = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    resp += d
peak = max(peak, rss())
print(resp.split(b"\r\n\r\n", 1)[1].decode())
print("bounded" if peak < 150 else "RSS %d MB" % peak)
PY
--- timeout: 60
--- response_body
314572800
bounded



=== TEST 3: a chunked request body is forwarded chunked, big and small
--- exec
$PYTHON - <<'PY'
import socket
def post(pieces, path="/body_size"):
    s = socket.create_connection(("127.0.0.1", 1984))
    s.sendall(b"POST %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n" % path.encode())
    for p in pieces:
        s.sendall(b"%x\r\n%s\r\n" % (len(p), p))
    s.sendall(b"0\r\n\r\n")
    resp = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        resp += d
    return resp.split(b"\r\n\r\n", 1)[1].decode()
print(post([b"y" * 100000] * 200))
print(post([b"hello ", b"chunked"], "/echo"))
PY
--- response_body
20000000
hello chunked



=== TEST 4: the body arrives after the head (Expect: 100-continue), in pieces
--- exec
$PYTHON - <<'PY'
import socket
s = socket.create_connection(("127.0.0.1", 1984))
s.sendall(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n"
          b"Expect: 100-continue\r\n\r\n")
print(s.recv(100).decode().strip())
s.sendall(b"01234")
s.sendall(b"56789")
resp = b""
while b"0123456789" not in resp:
    resp += s.recv(65536)
# the connection stays usable
s.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
while True:
    d = s.recv(65536)
    if not d:
        break
    resp += d
print(resp.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1")[0].decode())
print(resp.decode().split("\r\n\r\n")[-1].strip())
PY
--- response_body
HTTP/1.1 100 Continue
0123456789
hello world



=== TEST 5: Content-Length over client_max_body_size: 413 before connecting upstream
--- extra_yaml_config
nginx_config:
  http:
    client_max_body_size: 1m
# (the gateway started here, with this config, serves TEST 6 too: exec starts none)
--- request eval
"POST /echo\n" . ("a" x 2000000)
--- error_code: 413



=== TEST 6: a body over client_max_body_size mid-stream: 413, the upstream exchange dropped
--- exec
$PYTHON - <<'PY'
import socket
s = socket.create_connection(("127.0.0.1", 1984))
s.settimeout(10)
s.sendall(b"POST /body_size HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
resp = b""
try:
    for _ in range(40):
        s.sendall(b"10000\r\n" + b"z" * 65536 + b"\r\n")
except OSError:
    pass
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        resp += d
except OSError:
    pass
print(resp.split(b"\r\n")[0].decode())
PY
--- response_body
HTTP/1.1 413 Request Entity Too Large



=== TEST 7: a body request pipelined behind one in flight waits its turn, then streams
--- exec
$PYTHON - <<'PY'
import socket
s = socket.create_connection(("127.0.0.1", 1984))
s.settimeout(10)
s.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"
          b"POST /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
          b"Content-Length: 200000\r\n\r\n" + b"q" * 70000)
s.sendall(b"q" * 130000)
resp = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    resp += d
parts = resp.split(b"\r\n\r\n")
print(parts[1].split(b"HTTP/1.1")[0].decode().strip(), len(parts[2]), set(parts[2].decode()))
PY
--- response_body
hello world 200000 {'q'}



=== TEST 8: a streamed body stalled past client_body_timeout: closed (exec asserts it)
--- extra_yaml_config
nginx_config:
  http:
    client_body_timeout: 1s
--- exec
$PYTHON - <<'PY'
import socket, time
s = socket.create_connection(("127.0.0.1", 1984))
s.settimeout(8)
t0 = time.monotonic()
s.sendall(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789")
resp = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    resp += d
assert resp == b"" and time.monotonic() - t0 < 4, (resp[:40], time.monotonic() - t0)
# the worker serves others meanwhile and after
s = socket.create_connection(("127.0.0.1", 1984))
s.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
resp = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    resp += d
assert resp.endswith(b"hello world\n"), resp
PY
--- request
GET /hello
--- response_body
hello world
--- timeout: 10
