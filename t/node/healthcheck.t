# Upstream health checks (`checks.active`, `checks.passive`) as APISIX: the warn lines of
# lua-resty-healthcheck mark each counted probe or report, unhealthy nodes are skipped by the
# balancer, a recovered node comes back. Each block brings its own upstream (a new checker,
# whose first probes come one interval after it starts: interval 300 means "no probe during
# this block"); waits are on log lines (polled), never sleeps. Port 1979 refuses connections.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: a plain route (starts the gateway)
--- apisix_yaml
routes:
  - id: plain
    uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- response_body
hello world



=== TEST 2: active tcp checks take a refused node out: every request goes to the live one
--- apisix_yaml
routes:
  - id: active-tcp
    uri: /server_port
    upstream:
      retries: 0
      nodes:
        "127.0.0.1:1980": 1
        "127.0.0.1:1979": 1
      checks:
        active:
          type: tcp
          healthy:
            interval: 1
          unhealthy:
            interval: 1
            tcp_failures: 2
#END
--- error_log
unhealthy TCP increment (2/2) for '127.0.0.1(127.0.0.1:1979)'
(upstream#/apisix/routes/active-tcp) 127.0.0.1:1979 is unhealthy
--- request eval
["GET /server_port", "GET /server_port", "GET /server_port", "GET /server_port"]
--- response_body eval
["1980", "1980", "1980", "1980"]
--- timeout: 10



=== TEST 3: active http checks: a node answering 503 goes out, then comes back when it answers 200
--- apisix_yaml
routes:
  - id: active-http
    uri: /server_port
    upstream:
      nodes:
        "127.0.0.1:1981": 1
      checks:
        active:
          http_path: "/flap?token=active-http&fail=2"
          host: check.test
          req_headers:
            - "X-Probe: 1"
          healthy:
            interval: 1
            successes: 2
          unhealthy:
            interval: 1
            http_failures: 2
#END
--- error_log
applied in
--- request
GET /server_port
--- response_body chomp
1981
--- grep_error_log eval
qr/(?:un)?healthy (?:HTTP|SUCCESS) increment \(\d\/2\) for '[^']+'/
--- grep_error_log_out
unhealthy HTTP increment (1/2) for 'check.test(127.0.0.1:1981)'
unhealthy HTTP increment (2/2) for 'check.test(127.0.0.1:1981)'
healthy SUCCESS increment (1/2) for 'check.test(127.0.0.1:1981)'
healthy SUCCESS increment (2/2) for 'check.test(127.0.0.1:1981)'
--- timeout: 15



=== TEST 4: all nodes unhealthy: APISIX still picks from all of them
--- apisix_yaml
routes:
  - id: all-unhealthy
    uri: /server_port
    upstream:
      nodes:
        "127.0.0.1:1982": 1
      checks:
        active:
          http_path: /not_here
          healthy:
            interval: 1
          unhealthy:
            interval: 1
            http_failures: 1
#END
--- error_log
unhealthy HTTP increment (1/1) for '127.0.0.1(127.0.0.1:1982)'
--- request
GET /server_port
--- response_body chomp
1982
--- timeout: 10



=== TEST 5: passive checks: two 500s from a node take it out; its keys move to another node
--- apisix_yaml
routes:
  - id: passive
    uri: /port_status
    upstream:
      type: chash
      key: arg_id
      retries: 0
      nodes:
        "127.0.0.1:1980": 1
        "127.0.0.1:1981": 1
        "127.0.0.1:1982": 1
      checks:
        active:
          type: tcp
          healthy:
            interval: 300
          unhealthy:
            interval: 300
        passive:
          unhealthy:
            http_statuses: [500]
            http_failures: 2
#END
--- error_log
applied in
--- request eval
["GET /port_status?port=1981&code=500&id=4", "GET /port_status?port=1981&code=500&id=4", "GET /port_status?port=1981&code=500&id=4", "GET /port_status?port=1981&code=500&id=4"]
--- error_code eval
[500, 500, 200, 200]
--- response_body_like eval
["^1981$", "^1981$", "^198[02]$", "^198[02]$"]
--- grep_error_log eval
qr/unhealthy HTTP increment \(\d\/2\) for '[^']+'/
--- grep_error_log_out
unhealthy HTTP increment (1/2) for '127.0.0.1(127.0.0.1:1981)'
unhealthy HTTP increment (2/2) for '127.0.0.1(127.0.0.1:1981)'



=== TEST 6: retried connect failures count as passive TCP failures
--- apisix_yaml
routes:
  - id: passive-tcp
    uri: /server_port
    upstream:
      nodes:
        - host: 127.0.0.1
          port: 1979
          weight: 1
          priority: 1
        - host: 127.0.0.1
          port: 1980
          weight: 1
      checks:
        active:
          type: tcp
          healthy:
            interval: 300
          unhealthy:
            interval: 300
            tcp_failures: 5
        passive:
          unhealthy:
            tcp_failures: 2
#END
--- error_log
applied in
--- request eval
["GET /server_port", "GET /server_port", "GET /server_port"]
--- response_body eval
["1980", "1980", "1980"]
--- grep_error_log eval
qr/unhealthy TCP increment \(\d\/\d\) for '[^']+'/
--- grep_error_log_out
unhealthy TCP increment (1/2) for '127.0.0.1(127.0.0.1:1979)'
unhealthy TCP increment (2/2) for '127.0.0.1(127.0.0.1:1979)'
