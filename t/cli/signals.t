# The master's signals with nginx's meanings, and worker supervision.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
workers(2);
run_tests;

__DATA__

=== TEST 1: two workers serve the route
--- apisix_yaml
routes:
  - id: hello
    uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: sleep
    uri: /mysleep
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- response_body
hello world



=== TEST 2: HUP under load: new workers, old ones retired, no request lost
--- load: GET /hello
--- signal: HUP
--- request
GET /hello
--- response_body
hello world



=== TEST 3: TTIN adds a worker
--- signal: TTIN
--- request
GET /hello
--- response_body
hello world



=== TEST 4: TTOU removes one
--- signal: TTOU
--- request
GET /hello
--- response_body
hello world



=== TEST 5: a worker killed with -9 is replaced and the gateway keeps serving
--- kill_worker: KILL
--- request
GET /hello
--- response_body
hello world
--- error_log
exited on signal 9



=== TEST 6: USR1 reopens the log files (log rotation)
--- exec
mv logs/error.log logs/error.log.1
kill -USR1 "$(cat logs/gateway.pid)"
for i in $(seq 100); do test -e logs/error.log && break; sleep 0.05; done
test -e logs/error.log && echo reopened
--- response_body
reopened



=== TEST 7: QUIT drains an in-flight slow response before the master exits
--- inflight_request: GET /mysleep?seconds=1
--- signal: QUIT
--- inflight_error_code: 200
--- inflight_response_body
1



=== TEST 8: a new gateway after QUIT serves again
--- request
GET /hello
--- response_body
hello world



=== TEST 9: TERM stops fast: the in-flight request is cut
--- inflight_request: GET /mysleep?seconds=3
--- signal: TERM
--- inflight_error_code: 0



=== TEST 10: serving again after TERM
--- request
GET /hello
--- response_body
hello world



=== TEST 11: USR2 starts a new master on the same sockets; WINCH and QUIT retire the old one
--- exec
old=$(cat logs/gateway.pid)
kill -USR2 "$old"
for i in $(seq 200); do test -e logs/gateway.pid.oldbin && test -e logs/gateway.pid && test "$(cat logs/gateway.pid)" != "$old" && break; sleep 0.05; done
test "$(cat logs/gateway.pid.oldbin)" = "$old" && echo "old pid in oldbin"
new=$(cat logs/gateway.pid)
kill -WINCH "$old"
kill -QUIT "$old"
for i in $(seq 200); do test -e logs/gateway.pid.oldbin || break; sleep 0.05; done
test -e logs/gateway.pid.oldbin || echo "old master gone"
test "$(cat logs/gateway.pid)" = "$new" && kill -0 "$new" && echo "new master runs"
curl -s http://127.0.0.1:1984/hello
--- response_body
old pid in oldbin
old master gone
new master runs
hello world



=== TEST 12: with a short heartbeat timeout
--- extra_yaml_config
nginx_config:
  worker_heartbeat_timeout: 2s
--- request
GET /hello
--- response_body
hello world



=== TEST 13: a stuck worker (no heartbeat) is killed and replaced
--- exec
m=$(cat logs/gateway.pid)
w=$(pgrep -P "$m" | head -1)
kill -STOP "$w"
for i in $(seq 200); do grep -q "WORKER TIMEOUT (pid:$w)" logs/error.log && break; sleep 0.05; done
for i in $(seq 200); do test "$(pgrep -P "$m" | grep -c .)" = 2 && ! pgrep -P "$m" | grep -qx "$w" && break; sleep 0.05; done
pgrep -P "$m" | grep -qx "$w" || echo replaced
--- response_body
replaced
--- error_log
WORKER TIMEOUT



=== TEST 14: and the gateway serves
--- request
GET /hello
--- response_body
hello world
