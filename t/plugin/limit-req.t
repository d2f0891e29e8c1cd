# limit-req: the leaky bucket, local (one bucket per key for the whole node) and over the
# session's private Redis / Redis cluster; delays wait on a parked greenlet.
use t::APISIX 'no_plan';
repeat_each(1);
workers(2);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: rate, burst and key are required; key_type has no constant
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-req": {"rate": 1, "key": "remote_addr"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-req": {"rate": 0, "burst": 0, "key": "remote_addr"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-req": {"rate": 1, "burst": 0, "key": "x", "key_type": "constant"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[400, 400, 400]
--- response_body_json eval
['{"error_msg": "failed to check the configuration of plugin limit-req err: property \"burst\" is required"}',
 '{"error_msg": "failed to check the configuration of plugin limit-req err: property \"rate\" validation failed: expected 0 to be greater than 0"}',
 '{"error_msg": "failed to check the configuration of plugin limit-req err: property \"key_type\" validation failed: matches none of the enum values"}']



=== TEST 2: rate 1, burst 0, nodelay: the second request of the second is rejected (both workers)
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-req": {"rate": 1, "burst": 0, "key": "remote_addr", "nodelay": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"limit-req": {"key_type": "var", "policy": "local", "rejected_code": 503, "nodelay": true, "allow_degradation": false}}}}



=== TEST 3: 200, 503, 503
--- request eval
["GET /hello", "GET /hello", "GET /hello"]
--- error_code eval
[200, 503, 503]
--- response_headers
!X-RateLimit-Limit



=== TEST 4: rejected_code and rejected_msg; a header key: one bucket per value
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-req": {"rate": 1, "burst": 0, "key": "http_x_user", "nodelay": true, "rejected_code": 429, "rejected_msg": "slow down"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 5: alice, bob, alice again
--- request eval
["GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["X-User: alice", "X-User: bob", "X-User: alice"]
--- error_code eval
[200, 200, 429]
--- response_body eval
["hello world\n", "hello world\n", "{\"error_msg\":\"slow down\"}\n"]



=== TEST 6: var_combination
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-req": {"rate": 1, "burst": 0, "key": "$http_x_a $http_x_b", "key_type": "var_combination", "nodelay": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 7: a b, a b, a c
--- request eval
["GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["X-A: a\nX-B: b", "X-A: a\nX-B: b", "X-A: a\nX-B: c"]
--- error_code eval
[200, 503, 200]



=== TEST 8: burst with nodelay: 1 + burst 2 admitted at once out of 5 concurrent requests
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-req": {"rate": 0.1, "burst": 2, "key": "remote_addr", "nodelay": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 9: 3 x 200, 2 x 503
--- exec
for i in 1 2 3 4 5; do curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:1984/hello & done; wait
--- response_body_like
^(200\n){3}(503\n){2}$|^(?=(?:.*200\n){3})(?=(?:.*503\n){2}).*$



=== TEST 10: without nodelay the burst is delayed, not rejected; beyond it rejected
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-req": {"rate": 2, "burst": 1, "key": "remote_addr"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 11: 4 concurrent: 2 served (one after a delay), 2 rejected
--- exec
for i in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:1984/hello & done; wait
--- response_body_like
^(?=(?:.*200\n){2})(?=(?:.*503\n){2}).*$



=== TEST 12: a delayed request does not hold up its worker (one worker serves both)
--- extra_yaml_config
nginx_config:
  worker_processes: 1
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-req": {"rate": 0.5, "burst": 5, "key": "remote_addr"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/2
{"uri": "/hello1", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[200, 201]



=== TEST 13: the second /hello waits 2 s; /hello1 is answered meanwhile
--- extra_yaml_config
nginx_config:
  worker_processes: 1
--- exec
curl -s -o /dev/null http://127.0.0.1:1984/hello
(curl -s -o /dev/null -w 'delayed %{http_code}\n' http://127.0.0.1:1984/hello > slow.txt) &
until grep -q 'limit-req delays' logs/error.log 2>/dev/null; do sleep 0.05; done
curl -s -o /dev/null -w 'other %{http_code}\n' http://127.0.0.1:1984/hello1
wait
cat slow.txt
--- response_body
other 200
delayed 200



=== TEST 14: redis: rate 1, burst 0, nodelay
--- admin
DELETE /apisix/admin/routes/2
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-req": {"rate": 1, "burst": 0, "key": "remote_addr", "nodelay": true, "policy": "redis", "redis_host": "127.0.0.1", "redis_port": ${{env GATEWAY_TEST_REDIS_PORT}}}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[200, 200]



=== TEST 15: 200, 503, 503 (one bucket in Redis for both workers)
--- request eval
["GET /hello", "GET /hello", "GET /hello"]
--- error_code eval
[200, 503, 503]



=== TEST 16: the bucket is APISIX's hash
--- exec
k="$(redis-cli -p $GATEWAY_TEST_REDIS_PORT --scan --pattern 'limit_req:1:*')"
redis-cli -p $GATEWAY_TEST_REDIS_PORT hkeys "$k" | sort
--- response_body
excess
last



=== TEST 17: redis-cluster, burst with nodelay
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-req": {"rate": 0.1, "burst": 1, "key": "http_x_user", "nodelay": true, "policy": "redis-cluster", "redis_cluster_nodes": ${{env GATEWAY_TEST_REDIS_CLUSTER_JSON}}, "redis_cluster_name": "test"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 18: 200, 200, 503 per user
--- request eval
["GET /hello", "GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["X-User: a", "X-User: a", "X-User: a", "X-User: b"]
--- error_code eval
[200, 200, 503, 200]



=== TEST 19: Redis unreachable: 500, or through with allow_degradation
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-req": {"rate": 1, "burst": 0, "key": "remote_addr", "policy": "redis", "redis_host": "127.0.0.1", "redis_port": 1, "redis_timeout": 200}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/2
{"uri": "/hello1", "plugins": {"limit-req": {"rate": 1, "burst": 0, "key": "remote_addr", "policy": "redis", "redis_host": "127.0.0.1", "redis_port": 1, "redis_timeout": 200, "allow_degradation": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[200, 201]



=== TEST 20: 500 and 200
--- request eval
["GET /hello", "GET /hello1"]
--- error_code eval
[500, 200]
--- error_log
failed to limit req
