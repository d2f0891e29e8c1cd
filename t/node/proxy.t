# The minimal data path: routing on URI, host and method; proxying over pooled keep-alive
# connections; the answers the gateway makes itself.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: exact URI proxied; Server header names APISIX
--- apisix_yaml
routes:
  - id: exact
    uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: prefix
    uri: /prefix/*
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: host
    uri: /server_port
    host: foo.com
    upstream:
      nodes:
        "127.0.0.1:1981": 1
  - id: wildcard-host
    uri: /server_port
    hosts:
      - "*.bar.com"
    upstream:
      nodes:
        "127.0.0.1:1982": 1
  - id: post-only
    uri: /echo
    methods: [POST, PUT]
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: uri
    uris: [/uri, /old_uri, /status]
    upstream:
      nodes:
        - host: 127.0.0.1
          port: 1980
          weight: 1
  - id: dead
    uri: /dead
    upstream:
      nodes:
        "127.0.0.1:1979": 1
  - id: disabled
    uri: /hello1
    status: 0
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- response_body
hello world
--- response_headers_like
Server: APISIX/\d+\.\d+\.\d+



=== TEST 2: no route: 404 with APISIX's body
--- request
GET /not_found
--- error_code: 404
--- response_body
{"error_msg":"404 Route Not Found"}
--- response_headers_like
Server: APISIX/\d+\.\d+\.\d+



=== TEST 3: a disabled route (status 0) does not match
--- request
GET /hello1
--- error_code: 404



=== TEST 4: prefix route: proxied (the mock upstream answers 404 for a path it does not know)
--- request
GET /prefix/anything/here?x=1
--- error_code: 404
--- response_body_unlike
Route Not Found



=== TEST 5: host routes, exact and wildcard, the port in Host is ignored
--- request eval
["GET /server_port", "GET /server_port", "GET /server_port"]
--- more_headers eval
["Host: foo.com", "Host: a.bar.com:1984", "Host: other.com"]
--- error_code eval
[200, 200, 404]
--- response_body eval
["1981", "1982", "{\"error_msg\":\"404 Route Not Found\"}\n"]



=== TEST 6: methods: POST matches and its body reaches the upstream, GET does not match
--- request eval
["POST /echo\nhello body", "GET /echo"]
--- error_code eval
[200, 404]
--- response_body eval
["hello body", "{\"error_msg\":\"404 Route Not Found\"}\n"]



=== TEST 7: forwarding headers reach the upstream
--- request
GET /old_uri
--- more_headers
X-Forwarded-For: 10.0.0.1
--- response_body_like
uri: /old_uri
(?s).*x-forwarded-for: 10\.0\.0\.1, 127\.0\.0\.1
.*x-forwarded-host: localhost
.*x-forwarded-port: 1984
.*x-forwarded-proto: http
.*x-real-ip: 127\.0\.0\.1



=== TEST 8: keep-alive and pipelining: answers in order on one connection
--- pipelined_requests eval
["GET /hello", "GET /status", "GET /not_found", "GET /hello"]
--- error_code eval
[200, 200, 404, 200]
--- response_body eval
["hello world\n", "ok\n", "{\"error_msg\":\"404 Route Not Found\"}\n", "hello world\n"]



=== TEST 9: HEAD gets the headers and no body
--- request
HEAD /hello
--- response_body
--- response_headers
Content-Length: 12



=== TEST 10: an upstream that refuses connections gives 502
--- request
GET /dead
--- error_code: 502
--- error_log
127.0.0.1:1979



=== TEST 11: response headers asked of the mock pass through
--- request
GET /hello
--- more_headers
resp-X-Test: yes
--- response_headers
X-Test: yes



=== TEST 12: malformed HTTP gets 400 and the worker lives on
--- raw_request eval
"GARBAGE\r\n\r\n"
--- error_code: 400



=== TEST 13: still serving after the garbage
--- request
GET /hello
--- response_body
hello world



=== TEST 14: a body over client_max_body_size gets 413
--- extra_yaml_config
nginx_config:
  http:
    client_max_body_size: 8
--- request
POST /echo
0123456789abcdef
--- error_code: 413



=== TEST 15: Server header without the version when server tokens are off
--- extra_yaml_config
apisix:
  enable_server_tokens: false
--- request
GET /hello
--- response_headers
Server: APISIX
