# Self-test of the .t harness against the real gateway: every section the harness supports,
# on one standalone route, so a harness regression shows up here before it confuses others.
# To test the harness alone: GATEWAY_TEST_BIN=t/lib/fake_gateway.py pytest t/harness
no_shuffle();
repeat_each(1);
log_level('info');

__DATA__

=== TEST 1: a route from apisix_yaml, a plain request
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
  - id: 2
    uris: ["/uri", "/echo", "/server_port", "/status", "/hello_chunked", "/mysleep"]
    upstream:
      nodes:
        "127.0.0.1:1981": 1
      type: roundrobin
#END
--- request
GET /hello
--- response_body
hello world
--- error_code: 200



=== TEST 2: the default status is 200 and an unknown path is a 404 from the gateway
--- request
GET /not_a_route
--- error_code: 404
--- response_body_like eval
qr/404/



=== TEST 3: eval arrays send several requests, one connection each, checked by index
--- request eval
["GET /hello", "GET /server_port", "GET /nope"]
--- error_code eval
[200, 200, 404]
--- response_body_like eval
[qr/^hello world\n\z/, qr/^1981\z/, qr/.*/]



=== TEST 4: pipelined requests share one connection
--- pipelined_requests eval
["GET /hello", "GET /status", "GET /hello"]
--- response_body eval
["hello world\n", "ok\n", "hello world\n"]



=== TEST 5: more_headers reach the upstream; /uri lists them sorted
--- request
GET /uri
--- more_headers
X-Test-One: 1
X-Another: two
--- response_body_like
uri: /uri
.*x-another: two
.*x-test-one: 1



=== TEST 6: response_headers, absent headers, and headers set by the mock (resp-X)
--- request
GET /hello
--- more_headers
resp-X-Mock: from-upstream
--- response_headers
X-Mock: from-upstream
!X-Not-There
Content-Length: 12
--- response_headers_like
Server: APISIX.*
X-Mock: from-\w+



=== TEST 7: a request body through /echo, headers echoed back
--- request
POST /echo
hello body
--- more_headers
X-Echo: yes
--- response_body chomp
hello body
--- response_headers
X-Echo: yes



=== TEST 8: chunked upstream responses are decoded
--- request
GET /hello_chunked
--- response_body
hello world



=== TEST 9: response_body_unlike and the implicit "no [error]" check
--- request
GET /hello
--- response_body_unlike
goodbye



=== TEST 10: error_log sees lines the mock upstream writes to this block's log
--- request
GET /status
--- error_log
client request host: localhost
--- no_error_log
[error]



=== TEST 11: grep_error_log collects one match per line
--- request eval
["GET /status", "GET /status"]
--- grep_error_log eval
qr/client request host: \w+/
--- grep_error_log_out
client request host: localhost
client request host: localhost



=== TEST 12: a changed apisix.yaml is picked up by the running gateway (retried until then)
--- apisix_yaml
routes:
  - id: 1
    uris: ["/hello1", "/mysleep", "/uri"]
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request eval
["GET /hello1", "GET /hello"]
--- error_code eval
[200, 404]
--- response_body_like eval
[qr/hello1 world/, qr//]



=== TEST 13: exec runs a shell command in the prefix; its output is the body
--- exec
echo "prefix=$PWD"; test "$PWD" = "$PREFIX" && echo same; ls conf
--- response_body_like
prefix=.*
same
.*apisix.yaml
config.yaml



=== TEST 14: exec's exit status is asserted with exit_code
--- exec
echo oops >&2; exit 3
--- exit_code: 3
--- response_body
oops



=== TEST 15: the CLI is reachable from exec
--- exec
$GATEWAY version
--- response_body_like eval
qr/\d+\.\d+/



=== TEST 16: raw_request sends bytes verbatim
--- raw_request eval
"GET /hello1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
--- response_body
hello1 world



=== TEST 17: repeatable wait, and an inline timeout
--- request
GET /hello1
--- timeout: 3
--- wait: 0.1
--- response_body
hello1 world



=== TEST 18: response_body eval accepts a qr//, error_code_like a pattern
--- request
GET /hello1
--- error_code_like: ^2\d\d$
--- response_body eval
qr/^hello1 \w+$/



=== TEST 19: per-request more_headers and a HEAD request (no body expected)
--- request eval
["HEAD /hello1", "GET /uri"]
--- more_headers eval
["X-Skip: 1", "X-Only-Second: 2"]
--- response_body eval
["", qr/x-only-second: 2\n/]



=== TEST 20: a malformed request line gets a 400 from the gateway
--- raw_request eval
"GARBAGE\r\n\r\n"
--- error_code: 400



=== TEST 21: log_level per block restarts the gateway with that level
--- log_level: debug
--- request
GET /hello1
--- response_body
hello1 world


=== TEST 22: a response slower than the block's timeout counts as no response (code 0)
--- request
GET /mysleep?seconds=2
--- timeout: 0.5
--- error_code: 0
--- ignore_error_log


=== TEST 23: HUP under load: every old worker replaced, no request lost
--- extra_yaml_config
nginx_config:
  worker_processes: 2
--- load: GET /hello1
--- signal: HUP
--- request
GET /hello1
--- response_body
hello1 world



=== TEST 24: a worker killed with SIGKILL is replaced
--- extra_yaml_config
nginx_config:
  worker_processes: 2
--- kill_worker: KILL
--- request
GET /hello1
--- response_body
hello1 world
--- error_log
exited on signal 9



=== TEST 25: TTIN adds a worker, TTOU removes one
--- extra_yaml_config
nginx_config:
  worker_processes: 2
--- signal: TTIN TTOU
--- request
GET /hello1



=== TEST 26: QUIT lets an in-flight slow response finish, then the master exits
--- extra_yaml_config
nginx_config:
  worker_processes: 2
--- inflight_request: GET /mysleep?seconds=1
--- signal: QUIT
--- inflight_error_code: 200
--- inflight_response_body
1



=== TEST 27: after QUIT the next block starts a fresh gateway
--- request
GET /hello1
--- response_body
hello1 world
