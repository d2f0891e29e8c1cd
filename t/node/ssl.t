# TLS termination: HTTPS listener (apisix.ssl.listen 9443), SNI selection (exact, wildcard,
# fallback, unknown), RSA + ECDSA on one SNI, rotation without restart, ssl_protocols,
# X-Forwarded-Proto/scheme over TLS, keep-alive and pipelining and bodies over TLS.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: a certificate for test.com and *.test.com, and routes
--- admin
PUT /apisix/admin/ssls/1
{"cert": ${{file t/certs/test.crt}}, "key": ${{file t/certs/test.key}}, "snis": ["test.com", "*.test.com"]}
PUT /apisix/admin/routes/1
{"uri": "/hello", "upstream": {"nodes": {"127.0.0.1:1980": 1}, "type": "roundrobin"}}
PUT /apisix/admin/routes/2
{"uri": "/echo", "upstream": {"nodes": {"127.0.0.1:1980": 1}, "type": "roundrobin"}}
PUT /apisix/admin/routes/3
{"uri": "/body_size", "upstream": {"nodes": {"127.0.0.1:1980": 1}, "type": "roundrobin"}}
PUT /apisix/admin/routes/4
{"uri": "/server_port", "vars": [["scheme", "==", "https"]], "upstream": {"nodes": {"127.0.0.1:1980": 1}, "type": "roundrobin"}}
--- error_code eval
[201, 201, 201, 201, 201]



=== TEST 2: exact SNI, keep-alive (two requests, one connection)
--- exec
$PYTHON $REPO/t/lib/tls_client.py --sni test.com --cn GET /hello GET /hello
--- response_body
cn: test.com
200 hello world
200 hello world



=== TEST 3: wildcard SNI
--- exec
$PYTHON $REPO/t/lib/tls_client.py --sni www.test.com --cn GET /hello
--- response_body
cn: test.com
200 hello world



=== TEST 4: unknown SNI and no SNI: the handshake fails (no fallback_sni)
--- exec
$PYTHON $REPO/t/lib/tls_client.py --sni example.org GET /hello
$PYTHON $REPO/t/lib/tls_client.py GET /hello
--- response_body
handshake failed: TLSV1_UNRECOGNIZED_NAME
handshake failed: TLSV1_UNRECOGNIZED_NAME



=== TEST 5: curl through --resolve, X-Forwarded-Proto https, plain listener still http
--- exec
curl -sk --resolve test.com:9443:127.0.0.1 https://test.com:9443/hello
curl -sk -o /dev/null -D - --resolve test.com:9443:127.0.0.1 https://test.com:9443/echo | grep -i '^x-forwarded-\(proto\|port\)' | tr -d '\r' | sort
curl -s -o /dev/null -D - http://127.0.0.1:1984/echo | grep -i '^x-forwarded-proto' | tr -d '\r'
--- response_body
hello world
X-Forwarded-Port: 9443
X-Forwarded-Proto: https
X-Forwarded-Proto: http



=== TEST 6: the scheme variable is https on the TLS listener only
--- exec
curl -sk --resolve test.com:9443:127.0.0.1 https://test.com:9443/server_port
echo
curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:1984/server_port
--- response_body
1980
404



=== TEST 7: pipelined requests over TLS
--- exec
$PYTHON - <<'PY'
import socket, ssl
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 9443)), server_hostname="test.com")
s.sendall(b"GET /hello HTTP/1.1\r\nHost: test.com\r\n\r\n" * 3 + b"GET /hello HTTP/1.1\r\nHost: test.com\r\nConnection: close\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.count(b"hello world"), data.count(b"HTTP/1.1 200"))
PY
--- response_body
4 4



=== TEST 8: a large request body (8 MB) and a large response over TLS
--- exec
head -c 8388608 /dev/zero > body.bin
curl -sk --resolve test.com:9443:127.0.0.1 --data-binary @body.bin https://test.com:9443/body_size
echo
$PYTHON - <<'PY'
import socket, ssl
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 9443)), server_hostname="test.com")
body = b"y" * (5 << 20)
s.sendall(b"POST /echo HTTP/1.1\r\nHost: test.com\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n")[0].decode(), data.split(b"\r\n\r\n", 1)[1] == body)
PY
--- response_body
8388608
HTTP/1.1 200 OK True



=== TEST 9: RSA and ECDSA on one SNI: the client's algorithms decide
--- admin
PUT /apisix/admin/ssls/1
{"cert": ${{file t/certs/test.crt}}, "key": ${{file t/certs/test.key}}, "certs": [${{file t/certs/test-ecc.crt}}], "keys": [${{file t/certs/test-ecc.key}}], "snis": ["test.com", "*.test.com"]}
--- error_code: 200



=== TEST 10: an ECDSA-only client gets the EC certificate, an RSA-only one the RSA one
--- exec
$PYTHON $REPO/t/lib/tls_client.py --sni test.com --ecdsa --key-type GET /hello
$PYTHON $REPO/t/lib/tls_client.py --sni test.com --rsa --key-type GET /hello
--- response_body
key: EC
200 hello world
key: RSA
200 hello world



=== TEST 11: an exact SNI beats the wildcard; a new certificate serves at once
--- admin
PUT /apisix/admin/ssls/2
{"cert": ${{file t/certs/www.crt}}, "key": ${{file t/certs/www.key}}, "snis": ["www.test.com"]}
--- error_code: 201



=== TEST 12: www.test.com gets its own certificate, a.test.com the wildcard
--- exec
$PYTHON $REPO/t/lib/tls_client.py --sni www.test.com --cn GET /hello
$PYTHON $REPO/t/lib/tls_client.py --sni a.test.com --cn GET /hello
--- response_body
cn: www.test.com
200 hello world
cn: test.com
200 hello world



=== TEST 13: rotation without restart while handshakes keep coming
--- exec
$PYTHON - <<'PY'
import json, os, socket, ssl, threading, time, urllib.request
from cryptography import x509
repo = os.environ["REPO"]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
seen, failed, stop = [], [], threading.Event()
def cn():
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 9443), timeout=5), server_hostname="a.test.com")
    c = x509.load_der_x509_certificate(s.getpeercert(True))
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: a.test.com\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    if b"hello world" not in data:
        raise RuntimeError(data[:80])
    return c.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
def load():
    while not stop.is_set():
        try:
            seen.append(cn())
        except Exception as e:
            failed.append(repr(e))
threads = [threading.Thread(target=load) for _ in range(4)]
[t.start() for t in threads]
time.sleep(1)
body = json.dumps({"cert": open(repo + "/t/certs/rotated.crt").read(), "key": open(repo + "/t/certs/rotated.key").read(), "snis": ["test.com", "*.test.com"]}).encode()
req = urllib.request.Request("http://127.0.0.1:9180/apisix/admin/ssls/1", data=body, method="PUT")
urllib.request.urlopen(req).read()
mark = len(seen)
after = cn()
time.sleep(1)
stop.set()
[t.join() for t in threads]
print("before:", seen[0], "after:", after, "later:", sorted(set(seen[mark + 8:])), "failed:", len(failed), failed[:3])
PY
--- response_body
before: test.com after: rotated.test.com later: ['rotated.test.com'] failed: 0 []



=== TEST 14: an ssls object's own ssl_protocols (TLSv1.3 only for v13.test.com)
--- admin
PUT /apisix/admin/ssls/3
{"cert": ${{file t/certs/test.crt}}, "key": ${{file t/certs/test.key}}, "snis": ["v13.test.com"], "ssl_protocols": ["TLSv1.3"]}
--- error_code: 201



=== TEST 15: TLS 1.2 to that name is refused, TLS 1.3 served; other names keep TLS 1.2
--- exec
$PYTHON $REPO/t/lib/tls_client.py --sni v13.test.com --tls1.2 GET /hello | sed 's/: .*/: refused/'
$PYTHON $REPO/t/lib/tls_client.py --sni v13.test.com --proto GET /hello
$PYTHON $REPO/t/lib/tls_client.py --sni a.test.com --tls1.2 --proto GET /hello
--- response_body
handshake failed: refused
proto: TLSv1.3
200 hello world
proto: TLSv1.2
200 hello world



=== TEST 16: fallback_sni serves clients without SNI; ssl_protocols TLSv1.3 only
--- extra_yaml_config
apisix:
  ssl:
    fallback_sni: test.com
    ssl_protocols: TLSv1.3
--- request
GET /hello
--- response_body
hello world



=== TEST 17: no SNI → fallback certificate; TLS 1.2 refused
--- exec
$PYTHON $REPO/t/lib/tls_client.py --cn --proto --host-header test.com GET /hello
$PYTHON $REPO/t/lib/tls_client.py --sni test.com --tls1.2 GET /hello
--- response_body
cn: rotated.test.com
proto: TLSv1.3
200 hello world
handshake failed: TLSV1_ALERT_PROTOCOL_VERSION



=== TEST 18: WebSocket over TLS (client side), echoed by the mock
--- admin
PUT /apisix/admin/routes/5
{"uri": "/websocket", "enable_websocket": true, "upstream": {"nodes": {"127.0.0.1:1980": 1}, "type": "roundrobin"}}
--- error_code: 201



=== TEST 19: a frame goes through the tunnel and back
--- exec
$PYTHON - <<'PY'
import os, socket, ssl, struct
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 9443), timeout=5), server_hostname="test.com")
s.sendall(b"GET /websocket HTTP/1.1\r\nHost: test.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
print(head.split(b"\r\n")[0].decode())
payload = b"x" * 30000
mask = os.urandom(4)
s.sendall(bytes([0x81, 0x80 | 126]) + struct.pack(">H", len(payload)) + mask
          + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
data = b""
while len(data) < 4 + len(payload):
    data += s.recv(65536)
print(data[0] == 0x81, data[4:] == payload)
PY
--- response_body
HTTP/1.1 101 Switching Protocols
True True



=== TEST 20: a client that never completes its handshake is closed (client_header_timeout)
--- extra_yaml_config
nginx_config:
  http:
    client_header_timeout: 1s
--- request
GET /hello
--- response_body
hello world



=== TEST 21: half a ClientHello, then silence: the sweep closes the connection
--- exec
$PYTHON - <<'PY'
import socket, time
s = socket.create_connection(("127.0.0.1", 9443))
s.sendall(b"\x16\x03\x01\x02\x00\x01")   # the start of a ClientHello record
s.settimeout(15)
t0 = time.monotonic()
print("closed" if s.recv(100) == b"" else "answered")
PY
--- response_body
closed



=== TEST 22: private keys never reach the error log
--- exec
grep -c "PRIVATE KEY\|MIIE" logs/error.log || true
--- response_body
0
