# Retries and timeouts as APISIX: `retries` (default: nodes - 1; 0 disables), `retry_timeout`,
# the next node on connect refused / reset / timeout before the response head, 502 (504 for
# a timeout) when every try failed, with X-APISIX-Upstream-Status listing the tries; and
# `timeout` precedence (route over upstream). Port 1979 refuses connections; the mock's
# /reset sends a TCP RST, /mysleep hangs. Upstream error lines are rate-limited per node and
# message (one a second), so some blocks only check that nothing crashed.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: default retries (nodes - 1): a refused node is passed over, every request is answered
--- apisix_yaml
routes:
- id: default-retries
  uri: /server_port
  upstream:
    nodes:
      127.0.0.1:1979: 1
      127.0.0.1:1980: 1
  host: t1.test
- id: all-dead
  uri: /server_port
  upstream:
    nodes:
      127.0.0.1:1979: 1
      127.0.0.1:1978: 1
  host: t2.test
- id: one-retry
  uri: /server_port
  upstream:
    retries: 1
    nodes:
      127.0.0.1:1979: 1
      127.0.0.1:1978: 1
      127.0.0.1:1977: 1
  host: t3.test
- id: single-node
  uri: /server_port
  upstream:
    retries: 2
    nodes:
      127.0.0.1:1979: 1
  host: t4.test
- id: no-retry
  uri: /server_port
  upstream:
    retries: 0
    nodes:
      127.0.0.1:1979: 1
      127.0.0.1:1978: 1
  host: t5.test
- id: reset
  uri: /reset
  upstream:
    nodes:
      127.0.0.1:1980: 1
      127.0.0.1:1981: 1
  host: t6.test
- id: reset-all
  uri: /reset
  upstream:
    nodes:
      127.0.0.1:1980: 1
      127.0.0.1:1981: 1
  host: t7.test
- id: reset-post
  uri: /reset
  upstream:
    retries: 3
    nodes:
      127.0.0.1:1980: 1
  host: t8.test
- id: post-refused
  uri: /echo
  upstream:
    nodes:
    - host: 127.0.0.1
      port: 1979
      weight: 1
      priority: 1
    - host: 127.0.0.1
      port: 1980
      weight: 1
  host: t9.test
- id: hang
  uri: /mysleep
  timeout:
    connect: 1
    send: 1
    read: 1
  upstream:
    timeout:
      connect: 30
      send: 30
      read: 30
    nodes:
      127.0.0.1:1980: 1
      127.0.0.1:1981: 1
  host: t10.test
- id: retry-timeout
  uri: /mysleep
  upstream:
    retry_timeout: 1
    timeout:
      connect: 1
      send: 1
      read: 1
    nodes:
      127.0.0.1:1980: 1
      127.0.0.1:1981: 1
  host: t11.test
- id: by-upstream
  uri: /mysleep
  upstream_id: slow
  host: t12.test
- id: by-service
  uri: /mysleep
  host: s12.test
  service_id: svc
- id: patient-route
  uri: /mysleep
  timeout:
    connect: 10
    send: 10
    read: 10
  upstream_id: impatient
  host: t13.test
upstreams:
- id: slow
  timeout:
    connect: 1
    send: 1
    read: 1
  retries: 0
  nodes:
    127.0.0.1:1980: 1
- id: impatient
  timeout:
    connect: 1
    send: 1
    read: 1
  nodes:
    127.0.0.1:1980: 1
services:
- id: svc
  upstream_id: slow
#END
--- request eval
["GET /server_port", "GET /server_port", "GET /server_port", "GET /server_port"]
--- more_headers eval
["Host: t1.test", "Host: t1.test", "Host: t1.test", "Host: t1.test"]
--- response_body eval
["1980", "1980", "1980", "1980"]
--- error_log
(111: Connection refused) while connecting to upstream



=== TEST 2: every node refuses: 502 after one try per node, each try's status in the header
--- request
GET /server_port
--- more_headers
Host: t2.test
--- error_code: 502
--- response_headers
X-APISIX-Upstream-Status: 502, 502
--- no_error_log
Traceback



=== TEST 3: retries: 1 with three dead nodes: two tries, then 502
--- request
GET /server_port
--- more_headers
Host: t3.test
--- error_code: 502
--- response_headers
X-APISIX-Upstream-Status: 502, 502
--- no_error_log
Traceback



=== TEST 4: one node and retries: 2: the retries land on that node again
--- request
GET /server_port
--- more_headers
Host: t4.test
--- error_code: 502
--- response_headers
X-APISIX-Upstream-Status: 502, 502, 502
--- no_error_log
Traceback



=== TEST 5: retries: 0 disables retrying (one try, one status)
--- request
GET /server_port
--- more_headers
Host: t5.test
--- error_code: 502
--- response_headers
X-APISIX-Upstream-Status: 502
--- no_error_log
Traceback



=== TEST 6: a reset before any response byte moves a GET to the next node
--- request eval
["GET /reset?port=1980", "GET /reset?port=1980", "GET /reset?port=1980"]
--- more_headers eval
["Host: t6.test", "Host: t6.test", "Host: t6.test"]
--- response_body eval
["1981", "1981", "1981"]
--- error_log
while reading response header from upstream



=== TEST 7: every node resets: 502
--- request
GET /reset
--- more_headers
Host: t7.test
--- error_code: 502
--- response_headers
X-APISIX-Upstream-Status: 502, 502
--- no_error_log
Traceback



=== TEST 8: a POST that reached its node is not sent again (nginx: not idempotent)
--- request
POST /reset
hello
--- more_headers
Host: t8.test
--- error_code: 502
--- response_headers
X-APISIX-Upstream-Status: 502
--- no_error_log
Traceback



=== TEST 9: a POST is retried when the connection was refused (the node never saw it)
--- request
POST /echo
hello
--- more_headers
Host: t9.test
--- response_body chomp
hello
--- no_error_log
Traceback



=== TEST 10: a hanging upstream: 504 after the route's read timeout, each node tried
--- request
GET /mysleep?seconds=4
--- more_headers
Host: t10.test
--- error_code: 504
--- response_headers
X-APISIX-Upstream-Status: 504, 504
--- error_log
upstream timed out (110: Connection timed out) while reading response header from upstream
--- timeout: 15



=== TEST 11: retry_timeout: no try starts after it (one timed-out try, then 504)
--- request
GET /mysleep?seconds=3
--- more_headers
Host: t11.test
--- error_code: 504
--- response_headers
X-APISIX-Upstream-Status: 504
--- no_error_log
Traceback
--- timeout: 15



=== TEST 12: the upstream's timeout applies when the route has none (also through a service)
--- request eval
["GET /mysleep?seconds=3", "GET /mysleep?seconds=3"]
--- more_headers eval
["Host: t12.test", "Host: s12.test"]
--- error_code eval
[504, 504]
--- no_error_log
Traceback
--- timeout: 15



=== TEST 13: the route's timeout beats the upstream's: a slow answer within it is served
--- request
GET /mysleep?seconds=2.5
--- more_headers
Host: t13.test
--- response_body
2.5
--- timeout: 15
