# fault-injection: abort (status, body with $var, headers, percentage, vars) and delay
# (on a parked greenlet: other requests are served meanwhile).
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: abort with a status and a body
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      fault-injection:
        abort:
          http_status: 405
          body: "Fault Injection!\n"
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request
GET /hello
--- error_code: 405
--- response_body
Fault Injection!



=== TEST 2: body with a variable; headers set on the response
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      fault-injection:
        abort:
          http_status: 200
          body: "client addr: $remote_addr\n"
          headers:
            X-Fault: "uri $uri"
            X-Number: 7
      proxy-rewrite:
        uri: /hello1
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request
GET /hello
--- response_body
client addr: 127.0.0.1
--- response_headers
X-Fault: uri /hello
X-Number: 7



=== TEST 3: abort without a body: empty 200
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      fault-injection:
        abort:
          http_status: 200
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- response_body eval
""



=== TEST 4: zero percentage: never aborts
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      fault-injection:
        abort:
          http_status: 403
          percentage: 0
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- response_body
hello world



=== TEST 5: vars rules in abort (any rule set matching aborts)
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      fault-injection:
        abort:
          http_status: 403
          body: "Fault Injection!\n"
          vars:
            - - ["arg_name", "==", "jack"]
              - ["arg_age", "!", "<", 18]
            - - ["http_apikey", "==", "api-key"]
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request eval
["GET /hello?name=jack&age=18", "GET /hello?name=jack&age=17", "GET /hello?name=allen", "GET /hello"]
--- more_headers eval
["", "", "apikey: api-key", ""]
--- error_code eval
[403, 200, 403, 200]
--- response_body eval
["Fault Injection!\n", "hello world\n", "Fault Injection!\n", "hello world\n"]



=== TEST 6: delay, then proxy; the delay does not hold the event loop
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      fault-injection:
        delay:
          duration: 2
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: 2
    uri: /hello1
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- inflight_request
GET /hello
--- inflight_response_body
hello world
--- request
GET /hello1
--- response_body
hello1 world



=== TEST 7: invalid confs are refused with APISIX's messages
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      fault-injection:
        abort:
          http_status: 100
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: 2
    uri: /hello1
    plugins:
      fault-injection:
        delay:
          duration: "1"
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: 3
    uri: /server_port
    plugins:
      fault-injection: {}
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request eval
["GET /hello", "GET /hello1", "GET /server_port"]
--- error_code eval
[404, 404, 404]
--- error_log
failed to check the configuration of plugin fault-injection err: property "abort" validation failed: property "http_status" validation failed: expected 100 to be at least 200
failed to check the configuration of plugin fault-injection err: property "delay" validation failed: property "duration" validation failed: wrong type: expected number, got string
failed to check the configuration of plugin fault-injection err: expect object to have at least 1 properties



=== TEST 8: delay routes again
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      fault-injection:
        delay:
          duration: 1
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: 2
    uri: /hello1
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello1
--- response_body
hello1 world



=== TEST 9: a client that goes away during the delay gets nothing, and nothing breaks
--- request
GET /hello
--- timeout: 0.3
--- error_code: 0



=== TEST 10: the worker serves on while the abandoned delay ends; no error is logged
--- request eval
["GET /hello1", "GET /hello"]
--- response_body eval
["hello1 world\n", "hello world\n"]



=== TEST 11: pipelined behind a delayed request: answered in order
--- pipelined_requests eval
["GET /hello", "GET /hello1", "GET /hello"]
--- response_body eval
["hello world\n", "hello1 world\n", "hello world\n"]



=== TEST 12: a streamed 5 MB body waits in the socket during the delay, then goes whole
--- apisix_yaml
routes:
  - id: 1
    uri: /echo
    plugins:
      fault-injection:
        delay:
          duration: 0.5
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request eval
"POST /echo\n" . ("a" x 5000000)
--- response_body eval
"a" x 5000000



=== TEST 13: an abort while a 5 MB body streams in: the status, the body is dropped
--- apisix_yaml
routes:
  - id: 1
    uri: /echo
    plugins:
      fault-injection:
        delay:
          duration: 0.2
        abort:
          http_status: 403
          body: "no body for you\n"
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request eval
"POST /echo\n" . ("a" x 5000000)
--- error_code: 403
--- response_body
no body for you
