# limit-count with the local policy: counters shared by both workers of the node (the
# node-wide shared dict), fixed and sliding windows, keys, group, rules, headers.
use t::APISIX 'no_plan';
repeat_each(1);
workers(2);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: count must be a positive integer
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 0, "time_window": 60}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_like
failed to check the configuration of plugin limit-count err



=== TEST 2: schema: rules and group do not mix; duplicate rule keys
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"group": "g", "rules": [{"count": 1, "time_window": 60, "key": "$remote_addr"}]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"rules": [{"count": 1, "time_window": 60, "key": "$remote_addr"}, {"count": 2, "time_window": 60, "key": "$remote_addr"}]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[400, 400]
--- response_body_json eval
['{"error_msg": "failed to check the configuration of plugin limit-count err: group and rules cannot be specified at the same time"}',
 '{"error_msg": "failed to check the configuration of plugin limit-count err: duplicate key \'$remote_addr\' in rules"}']



=== TEST 3: defaults filled in as APISIX stores them
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 2, "time_window": 60}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"limit-count": {"count": 2, "time_window": 60, "key": "remote_addr", "key_type": "var", "policy": "local", "rejected_code": 503, "window_type": "fixed", "allow_degradation": false, "show_limit_quota_header": true, "sync_interval": -1}}}}



=== TEST 4: count 2 per node: 200, 200, 503, 503 over new connections (both workers)
--- request eval
["GET /hello", "GET /hello", "GET /hello", "GET /hello"]
--- error_code eval
[200, 200, 503, 503]
--- response_headers eval
["X-RateLimit-Limit: 2\nX-RateLimit-Remaining: 1\nX-RateLimit-Reset: 60",
 "X-RateLimit-Limit: 2\nX-RateLimit-Remaining: 0",
 "X-RateLimit-Limit: 2\nX-RateLimit-Remaining: 0",
 "X-RateLimit-Limit: 2\nX-RateLimit-Remaining: 0"]
--- response_headers_like eval
["X-RateLimit-Reset: 60", "X-RateLimit-Reset: 59(\\.\\d+)?|60", "X-RateLimit-Reset: 59(\\.\\d+)?|60", "X-RateLimit-Reset: 59(\\.\\d+)?|60"]



=== TEST 5: changing the conf starts a new counter; rejected_code and rejected_msg
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 1, "time_window": 60, "rejected_code": 429, "rejected_msg": "too many requests"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 6: 200 then 429 with the message
--- request eval
["GET /hello", "GET /hello"]
--- error_code eval
[200, 429]
--- response_body eval
["hello world\n", "{\"error_msg\":\"too many requests\"}\n"]



=== TEST 7: show_limit_quota_header false: no headers
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 1, "time_window": 60, "show_limit_quota_header": false}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 8: no X-RateLimit headers, allowed or rejected
--- request eval
["GET /hello", "GET /hello"]
--- error_code eval
[200, 503]
--- response_headers eval
["!X-RateLimit-Limit\n!X-RateLimit-Remaining\n!X-RateLimit-Reset", "!X-RateLimit-Limit\n!X-RateLimit-Remaining"]



=== TEST 9: key_type var on a header: each value has its own counter; absent falls back to the client address
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 1, "time_window": 60, "key": "http_x_user"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 10: alice, bob, alice again, no header, no header again
--- request eval
["GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["X-User: alice", "X-User: bob", "X-User: alice", "", ""]
--- error_code eval
[200, 200, 503, 200, 503]



=== TEST 11: key_type var_combination and constant
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 1, "time_window": 60, "key": "$http_x_a-$http_x_b", "key_type": "var_combination"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/2
{"uri": "/hello1", "plugins": {"limit-count": {"count": 2, "time_window": 60, "key": "everyone", "key_type": "constant"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[200, 201]



=== TEST 12: a-b twice, a-c, then the constant key: 2 for everybody
--- request eval
["GET /hello", "GET /hello", "GET /hello", "GET /hello1", "GET /hello1", "GET /hello1"]
--- more_headers eval
["X-A: a\nX-B: b", "X-A: a\nX-B: b", "X-A: a\nX-B: c", "X-User: 1", "X-User: 2", "X-User: 3"]
--- error_code eval
[200, 503, 200, 200, 200, 503]



=== TEST 13: group: two routes share one counter
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 2, "time_window": 60, "group": "services_1"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/2
{"uri": "/hello1", "plugins": {"limit-count": {"count": 2, "time_window": 60, "group": "services_1"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[200, 200]



=== TEST 14: hello, hello1, then both are over
--- request eval
["GET /hello", "GET /hello1", "GET /hello", "GET /hello1"]
--- error_code eval
[200, 200, 503, 503]



=== TEST 15: group conf mismatched
--- admin
PUT /apisix/admin/routes/3
{"uri": "/hello2", "plugins": {"limit-count": {"count": 3, "time_window": 60, "group": "services_1"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_json
{"error_msg": "failed to check the configuration of plugin limit-count err: group conf mismatched"}
--- error_log
current limit-count group services_1 conf



=== TEST 15b: the mismatch log lines never show a redis password
--- admin
PUT /apisix/admin/routes/3
{"uri": "/hello2", "plugins": {"limit-count": {"count": 2, "time_window": 60, "group": "services_1", "policy": "redis", "redis_host": "127.0.0.1", "redis_password": "s3cr3t-redis-pw"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- error_log
current limit-count group services_1 conf
--- no_error_log
s3cr3t-redis-pw



=== TEST 16: rules: per-rule headers (header_prefix or the rule's index); a rule whose key resolves nothing does not apply
--- admin
DELETE /apisix/admin/routes/2
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"rules": [{"count": 1, "time_window": 60, "key": "$http_x_user", "header_prefix": "user"}, {"count": 3, "time_window": 60, "key": "$http_x_team"}]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[200, 200]



=== TEST 17: user rule then team rule (a request the user rule rejects is not counted by the team rule)
--- request eval
["GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["X-User: a\nX-Team: t", "X-User: b\nX-Team: t", "X-User: a\nX-Team: t", "X-Team: t", "X-Team: t"]
--- error_code eval
[200, 200, 503, 200, 503]
--- response_headers eval
["X-user-RateLimit-Limit: 1\nX-user-RateLimit-Remaining: 0\nX-1-RateLimit-Remaining:\nX-2-RateLimit-Limit: 3\nX-2-RateLimit-Remaining: 2",
 "X-user-RateLimit-Remaining: 0\nX-2-RateLimit-Remaining: 1",
 "X-user-RateLimit-Remaining: 0",
 "X-2-RateLimit-Remaining: 0\n!X-user-RateLimit-Remaining",
 "X-2-RateLimit-Remaining: 0"]



=== TEST 18: rules: no rule applies: 500
--- request
GET /hello
--- error_code: 500
--- error_log
failed to get rate limit rules



=== TEST 19: count and time_window from variables
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": "$http_count", "time_window": "${http_window ?? 60}", "key": "http_x_user"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 20: count 2 for u1, 1 for u2; a count that is not a number: 500
--- request eval
["GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["Count: 2\nX-User: u1", "Count: 2\nX-User: u1", "Count: 2\nX-User: u1", "Count: 1\nX-User: u2", "Count: 1\nX-User: u2", "Count: x\nX-User: u3"]
--- error_code eval
[200, 200, 503, 200, 503, 500]
--- response_headers eval
["X-RateLimit-Limit: 2", "X-RateLimit-Remaining: 0", "X-RateLimit-Remaining: 0", "X-RateLimit-Limit: 1", "X-RateLimit-Limit: 1", ""]
--- error_log
resolved value is not a number



=== TEST 21: a 1 s fixed window
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 1, "time_window": 1}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 22: the second request of the window is rejected
--- request eval
["GET /hello", "GET /hello"]
--- error_code eval
[200, 503]



=== TEST 23: once the window is over the counter starts again
--- exec
sleep 1.1
--- request
GET /hello
--- response_headers
X-RateLimit-Remaining: 0
X-RateLimit-Reset: 1



=== TEST 24: sliding window (an hour: the windows are aligned to the clock)
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 2, "time_window": 3600, "window_type": "sliding"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 25: sliding: 2 per window across workers
--- request eval
["GET /hello", "GET /hello", "GET /hello"]
--- error_code eval
[200, 200, 503]
--- response_headers eval
["X-RateLimit-Limit: 2\nX-RateLimit-Remaining: 1", "X-RateLimit-Remaining: 0", "X-RateLimit-Remaining: 0"]



=== TEST 26: the plugin on a service: counted for its route
--- admin
PUT /apisix/admin/services/1
{"plugins": {"limit-count": {"count": 1, "time_window": 60, "rejected_code": 403}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/1
{"uri": "/hello", "service_id": "1"}
--- error_code eval
[201, 200]



=== TEST 27: 200 then 403
--- request eval
["GET /hello", "GET /hello"]
--- error_code eval
[200, 403]



=== TEST 28: a global rule's limit is shared by every route
--- admin
DELETE /apisix/admin/routes/1
PUT /apisix/admin/routes/1
{"uri": "/hello", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/2
{"uri": "/hello1", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/global_rules/1
{"plugins": {"limit-count": {"count": 3, "time_window": 60}}}
--- error_code eval
[200, 201, 201, 201]



=== TEST 29: 3 requests over both routes, then both are over
--- request eval
["GET /hello", "GET /hello1", "GET /hello", "GET /hello1", "GET /hello"]
--- error_code eval
[200, 200, 200, 503, 503]
--- response_headers eval
["X-RateLimit-Remaining: 2", "X-RateLimit-Remaining: 1", "X-RateLimit-Remaining: 0", "X-RateLimit-Remaining: 0", "X-RateLimit-Remaining: 0"]



=== TEST 30: node-wide: 20 new connections, served by both workers, one counter (count 1)
--- admin
DELETE /apisix/admin/global_rules/1
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 1, "time_window": 60}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[200, 200]



=== TEST 31: one 200, 19 x 503, the rejections logged by two worker pids
--- exec
n=$(wc -l < logs/error.log)
for i in $(seq 1 20); do curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:1984/hello; done | sort | uniq -c | awk '{print $2 " x" $1}'
echo "workers: $(tail -n +$((n + 1)) logs/error.log | grep 'limit-count exits with http status code 503' | grep -o ' [0-9]*#' | sort -u | wc -l)"
--- response_body
200 x1
503 x19
workers: 2



=== TEST 32: the counters live in the master's shared memory: they survive a HUP and a killed worker
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 4, "time_window": 60}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 33: one request
--- request
GET /hello
--- response_headers
X-RateLimit-Remaining: 3



=== TEST 34: after a reload (new workers) the count goes on
--- signal
HUP
--- request
GET /hello
--- response_headers
X-RateLimit-Remaining: 2



=== TEST 35: after a worker is killed and respawned, too
--- kill_worker
KILL
--- request eval
["GET /hello", "GET /hello", "GET /hello"]
--- error_code eval
[200, 200, 503]
--- response_headers eval
["X-RateLimit-Remaining: 1", "X-RateLimit-Remaining: 0", "X-RateLimit-Remaining: 0"]
--- ignore_error_log



=== TEST 36: the quota headers replace the upstream's own X-RateLimit-*; its other headers pass
--- admin
PUT /apisix/admin/routes/1
{"uri": "/headers", "plugins": {"limit-count": {"count": 5, "time_window": 60}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 37: one X-RateLimit-Limit (ours), X-Custom as the upstream sent it
--- exec
curl -s -D - -o /dev/null 'http://127.0.0.1:1984/headers?X-RateLimit-Limit=999&X-Custom=a%20b' | tr -d '\r' | grep -i -E '^(x-ratelimit-limit|x-ratelimit-remaining|x-custom|server):'
--- response_body
Server: APISIX/3.18.0
X-Custom: a b
X-RateLimit-Limit: 5
X-RateLimit-Remaining: 4
