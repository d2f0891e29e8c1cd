# limit-conn: concurrent requests per key, counted in access and given back in the log phase
# (aborted requests included), local (node-wide shared dict) and over the session's Redis.
use t::APISIX 'no_plan';
repeat_each(1);
workers(2);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: conn, burst, default_conn_delay and key (or rules)
--- admin
PUT /apisix/admin/routes/1
{"uri": "/mysleep", "plugins": {"limit-conn": {"conn": 1, "burst": 0, "key": "remote_addr"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/1
{"uri": "/mysleep", "plugins": {"limit-conn": {"conn": 0, "burst": 0, "default_conn_delay": 0.1, "key": "remote_addr"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[400, 400]
--- response_body_like eval
["failed to check the configuration of plugin limit-conn err", "failed to check the configuration of plugin limit-conn err"]



=== TEST 2: conn 1, burst 0
--- admin
PUT /apisix/admin/routes/1
{"uri": "/mysleep", "plugins": {"limit-conn": {"conn": 1, "burst": 0, "default_conn_delay": 0.1, "key": "remote_addr"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"limit-conn": {"key_type": "var", "policy": "local", "rejected_code": 503, "only_use_default_delay": false, "allow_degradation": false}}}}



=== TEST 3: while one request is in flight (on either worker) the next is rejected
--- inflight_request
GET /mysleep?seconds=1
--- request
GET /mysleep?seconds=0
--- error_code: 503



=== TEST 4: once it finished (the log phase gave it back) the next one passes
--- request eval
["GET /mysleep?seconds=0", "GET /mysleep?seconds=0"]
--- response_body eval
["0\n", "0\n"]



=== TEST 5: a client that goes away mid-request gives its connection back too
--- exec
curl -s -o /dev/null --max-time 0.3 'http://127.0.0.1:1984/mysleep?seconds=1'
for i in $(seq 1 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' 'http://127.0.0.1:1984/mysleep?seconds=0')
  [ "$code" = 200 ] && break
  sleep 0.05
done
echo "$code"
--- response_body
200



=== TEST 6: burst: delayed within conn + burst, rejected beyond; rejected_code and rejected_msg
--- admin
PUT /apisix/admin/routes/1
{"uri": "/mysleep", "plugins": {"limit-conn": {"conn": 1, "burst": 1, "default_conn_delay": 0.2, "key": "remote_addr", "rejected_code": 429, "rejected_msg": "busy"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 7: one in flight: the second is delayed and served, a third (concurrently) rejected
--- inflight_request
GET /mysleep?seconds=1
--- exec
curl -s -w ' %{http_code}\n' 'http://127.0.0.1:1984/mysleep?seconds=0.5' > a.txt &
until grep -q 'limit-conn delays' logs/error.log; do sleep 0.02; done
curl -s -w ' %{http_code}\n' 'http://127.0.0.1:1984/mysleep?seconds=0'
wait
cat a.txt
--- response_body
{"error_msg":"busy"}
 429
0.5
 200



=== TEST 8: key per header value; var_combination
--- admin
PUT /apisix/admin/routes/1
{"uri": "/mysleep", "plugins": {"limit-conn": {"conn": 1, "burst": 0, "default_conn_delay": 0.1, "key": "$arg_a-$arg_b", "key_type": "var_combination"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 9: a-b in flight: a-b rejected, a-c served
--- inflight_request
GET /mysleep?seconds=1&a=a&b=b
--- request eval
["GET /mysleep?seconds=0&a=a&b=b", "GET /mysleep?seconds=0&a=a&b=c"]
--- error_code eval
[503, 200]



=== TEST 10: rules: each rule limits its own key; conn from a variable ($arg_conn)
--- admin
PUT /apisix/admin/routes/1
{"uri": "/mysleep", "plugins": {"limit-conn": {"default_conn_delay": 0.1, "rules": [{"conn": "$arg_conn", "burst": 0, "key": "$arg_user"}, {"conn": 5, "burst": 0, "key": "${http_x_team}"}]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 11: u1 in flight (conn 1): u1 rejected, u2 served; no rule applies: 500
--- inflight_request
GET /mysleep?seconds=1&user=u1&conn=1
--- request eval
["GET /mysleep?seconds=0&user=u1&conn=1", "GET /mysleep?seconds=0&user=u2&conn=1", "GET /mysleep?seconds=0"]
--- error_code eval
[503, 200, 500]
--- error_log
failed to get limit conn rules



=== TEST 12: redis: conn 1, burst 0
--- admin
PUT /apisix/admin/routes/1
{"uri": "/mysleep", "plugins": {"limit-conn": {"conn": 1, "burst": 0, "default_conn_delay": 0.1, "key": "remote_addr", "policy": "redis", "redis_host": "127.0.0.1", "redis_port": ${{env GATEWAY_TEST_REDIS_PORT}}}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200
--- response_body_json_subset
{"value": {"plugins": {"limit-conn": {"key_ttl": 3600, "redis_timeout": 1000}}}}



=== TEST 13: one in flight: the next is rejected (the count is in Redis)
--- inflight_request
GET /mysleep?seconds=1
--- request
GET /mysleep?seconds=0
--- error_code: 503



=== TEST 14: released in the log phase: the sorted set empties, and the next request is served
--- exec
$PYTHON - <<'PY'
import os, time, urllib.error, urllib.request
import redis

r = redis.Redis(port=int(os.environ["GATEWAY_TEST_REDIS_PORT"]))

def members():
    """The sorted sets left once the log phase gave the request back: it runs after the
    response went out (as APISIX's), so it is awaited, for 5 s at most."""
    deadline = time.monotonic() + 5
    while r.keys("limit_conn:1:*") and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(r.keys("limit_conn:1:*"))

for _ in range(2):
    print("sets:", members())   # (the first time: TEST 13's request in flight)
    try:
        print(urllib.request.urlopen("http://127.0.0.1:1984/mysleep?seconds=0").status)
    except urllib.error.HTTPError as e:
        print(e.code)
print("sets:", members())
PY
--- response_body
sets: 0
200
sets: 0
200
sets: 0



=== TEST 15: no member left in Redis
--- exec
echo "sets: $(redis-cli -p $GATEWAY_TEST_REDIS_PORT --scan --pattern 'limit_conn:1:*' | wc -l)"
--- response_body
sets: 0



=== TEST 16: redis-cluster
--- admin
PUT /apisix/admin/routes/1
{"uri": "/mysleep", "plugins": {"limit-conn": {"conn": 1, "burst": 0, "default_conn_delay": 0.1, "key": "remote_addr", "policy": "redis-cluster", "redis_cluster_nodes": ${{env GATEWAY_TEST_REDIS_CLUSTER_JSON}}, "redis_cluster_name": "test"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 17: one in flight: the next is rejected
--- inflight_request
GET /mysleep?seconds=1
--- request
GET /mysleep?seconds=0
--- error_code: 503



=== TEST 18: then served again, once the log phase gave TEST 17's request back
--- exec
$PYTHON - <<'PY'
import json, os, time, urllib.error, urllib.request
import redis

nodes = [redis.Redis(host=a.rsplit(":", 1)[0], port=int(a.rsplit(":", 1)[1]))
         for a in json.loads(os.environ["GATEWAY_TEST_REDIS_CLUSTER_JSON"])]
deadline = time.monotonic() + 5
while any(n.keys("limit_conn:1:*") for n in nodes) and time.monotonic() < deadline:
    time.sleep(0.02)
try:
    print(urllib.request.urlopen("http://127.0.0.1:1984/mysleep?seconds=0").status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
--- response_body
200



=== TEST 19: Redis unreachable: 500, or through with allow_degradation
--- admin
PUT /apisix/admin/routes/1
{"uri": "/mysleep", "plugins": {"limit-conn": {"conn": 1, "burst": 0, "default_conn_delay": 0.1, "key": "remote_addr", "policy": "redis", "redis_host": "127.0.0.1", "redis_port": 1, "redis_timeout": 200}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/2
{"uri": "/hello", "plugins": {"limit-conn": {"conn": 1, "burst": 0, "default_conn_delay": 0.1, "key": "remote_addr", "policy": "redis", "redis_host": "127.0.0.1", "redis_port": 1, "redis_timeout": 200, "allow_degradation": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[200, 201]



=== TEST 20: 500 and 200
--- request eval
["GET /mysleep?seconds=0", "GET /hello"]
--- error_code eval
[500, 200]
--- error_log
failed to limit conn
