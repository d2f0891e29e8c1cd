# The usual request (whole and bodiless in one read) is parsed without llhttp, and a
# connection's repeated header block is reused: what the upstream gets must not change,
# request after request on one connection, whatever the headers do; and the requests it
# leaves to llhttp get llhttp's answers (400 for a duplicate Host, 414 for a long target).
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: routes
--- apisix_yaml
routes:
  - id: uri
    uri: /uri
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: hello
    uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: echo
    uri: /echo
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- response_body
hello world



=== TEST 2: one connection, one read per request: each request's own headers go upstream
--- exec
$PYTHON - <<'PY'
import socket

s = socket.create_connection(("127.0.0.1", 1984))
f = s.makefile("rb")

def exchange(head):
    s.sendall(b"GET /uri HTTP/1.1\r\nHost: localhost\r\n" + head + b"\r\n")
    status = f.readline()
    length = 0
    while True:
        line = f.readline()
        if line == b"\r\n":
            break
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    body = f.read(length).decode()
    wanted = ("x-a", "x-b", "authorization", "referer", "user-agent")
    print(status.split()[1].decode(), " | ".join(
        repr(line) for line in body.splitlines() if line.split(":")[0] in wanted) or "-")

exchange(b"X-A: 1\r\nUser-Agent: t/1\r\n")
exchange(b"X-A: 1\r\nUser-Agent: t/1\r\n")           # the same block again
exchange(b"X-A: 2\r\nUser-Agent: t/1\r\n")           # one value changed
exchange(b"X-A: 2\r\nAuthorization: Basic Zm9vOmJhcg==\r\nReferer: http://r/\r\n")
exchange(b"X-A: 1\r\nUser-Agent: t/1\r\n")           # the first block once more
exchange(b"X-B:\t  blanks around  \r\n")              # leading blanks dropped only
exchange(b"X-A: 3\r\nConnection: keep-alive\r\n")
exchange(b"")
s.close()
PY
--- response_body
200 'user-agent: t/1' | 'x-a: 1'
200 'user-agent: t/1' | 'x-a: 1'
200 'user-agent: t/1' | 'x-a: 2'
200 'authorization: Basic Zm9vOmJhcg==' | 'referer: http://r/' | 'x-a: 2'
200 'user-agent: t/1' | 'x-a: 1'
200 'x-b: blanks around  '
200 'x-a: 3'
200 -



=== TEST 3: a duplicate Host gets 400 and the connection is closed
--- raw_request eval
"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
--- error_code: 400



=== TEST 4: a request target longer than large_client_header_buffers' size gets 414
--- extra_yaml_config
nginx_config:
  http:
    large_client_header_buffers: 4 1k
--- raw_request eval
"GET /hello?" . ("a" x 1500) . " HTTP/1.1\r\nHost: localhost\r\n\r\n"
--- error_code: 414



=== TEST 5: a path that climbs above the root gets 400
--- raw_request eval
"GET /a/%2e%2e/%2e%2e/hello HTTP/1.1\r\nHost: localhost\r\n\r\n"
--- error_code: 400



=== TEST 6: a body that reads as a whole request is a body: forwarded, never answered
--- exec
$PYTHON - <<'PY'
import socket

s = socket.create_connection(("127.0.0.1", 1984))
f = s.makefile("rb")

def response():
    status = f.readline().split()[1].decode()
    length = 0
    while True:
        line = f.readline()
        if line == b"\r\n":
            return status, length
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)

body = b"GET /uri HTTP/1.1\r\nHost: localhost\r\nX-Smuggled: 1\r\n\r\n"
s.sendall(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n"
          b"Expect: 100-continue\r\n\r\n" % len(body))
print(response())                       # the 100: the head was read without its body
s.sendall(body)                         # so the body comes in a read of its own
status, length = response()
print(status, f.read(length) == body)
s.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
status, length = response()
print(status, f.read(length))           # the next answer is this request's
PY
--- response_body
('100', 0)
200 True
200 b'hello world\n'
