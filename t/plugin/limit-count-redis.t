# limit-count with policy redis / redis-cluster, against the session's private redis-server
# and 3-node cluster (t/lib/redis_server.py): one counter for every worker (and every node
# sharing the Redis), allow_degradation when Redis is unreachable.
use t::APISIX 'no_plan';
repeat_each(1);
workers(2);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: policy redis needs redis_host
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 2, "time_window": 60, "policy": "redis"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_like
failed to check the configuration of plugin limit-count err: .*



=== TEST 2: schema: redis-cluster needs the nodes and a name; sync_interval bounds
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 2, "time_window": 60, "policy": "redis-cluster", "redis_cluster_nodes": ["127.0.0.1:1"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 2, "time_window": 60, "policy": "redis", "redis_host": "127.0.0.1", "sync_interval": 0.01}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 2, "time_window": 60, "policy": "redis", "redis_host": "127.0.0.1", "sync_interval": 60}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[400, 400, 400]
--- response_body_like eval
['failed to check the configuration of plugin limit-count err: .*clause did not match',
 'sync_interval should not be smaller than 0.1',
 'sync_interval should be smaller than time_window']



=== TEST 3: count 2 in Redis, defaults filled in
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 2, "time_window": 60, "policy": "redis", "redis_host": "127.0.0.1", "redis_port": ${{env GATEWAY_TEST_REDIS_PORT}}}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"limit-count": {"policy": "redis", "redis_database": 0, "redis_timeout": 1000, "redis_ssl": false, "redis_keepalive_pool": 100, "redis_keepalive_timeout": 10000}}}}



=== TEST 4: 200, 200, 503, 503 across both workers, with the headers
--- request eval
["GET /hello", "GET /hello", "GET /hello", "GET /hello"]
--- error_code eval
[200, 200, 503, 503]
--- response_headers eval
["X-RateLimit-Limit: 2\nX-RateLimit-Remaining: 1\nX-RateLimit-Reset: 60", "X-RateLimit-Remaining: 0", "X-RateLimit-Remaining: 0", "X-RateLimit-Remaining: 0"]



=== TEST 5: the counter is in Redis under APISIX's prefix, with the window as its TTL
--- exec
redis-cli -p $GATEWAY_TEST_REDIS_PORT --scan --pattern 'plugin-limit-count:v1:1:*' | wc -l
redis-cli -p $GATEWAY_TEST_REDIS_PORT get "$(redis-cli -p $GATEWAY_TEST_REDIS_PORT --scan --pattern 'plugin-limit-count:v1:1:*')"
redis-cli -p $GATEWAY_TEST_REDIS_PORT ttl "$(redis-cli -p $GATEWAY_TEST_REDIS_PORT --scan --pattern 'plugin-limit-count:v1:1:*')" | grep -cE '^(59|60)$'
--- response_body
1
4
1



=== TEST 6: group over Redis, rejected_msg; a database and a key per header
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 1, "time_window": 60, "group": "g1", "key": "http_x_user", "rejected_code": 429, "rejected_msg": "slow down", "policy": "redis", "redis_host": "127.0.0.1", "redis_port": ${{env GATEWAY_TEST_REDIS_PORT}}, "redis_database": 1}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/2
{"uri": "/hello1", "plugins": {"limit-count": {"count": 1, "time_window": 60, "group": "g1", "key": "http_x_user", "rejected_code": 429, "rejected_msg": "slow down", "policy": "redis", "redis_host": "127.0.0.1", "redis_port": ${{env GATEWAY_TEST_REDIS_PORT}}, "redis_database": 1}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[200, 201]



=== TEST 7: alice on /hello, alice on /hello1 (same group: rejected), bob
--- request eval
["GET /hello", "GET /hello1", "GET /hello1"]
--- more_headers eval
["X-User: alice", "X-User: alice", "X-User: bob"]
--- error_code eval
[200, 429, 200]
--- response_body eval
["hello world\n", "{\"error_msg\":\"slow down\"}\n", "hello1 world\n"]



=== TEST 8: the group counter lives in database 1
--- exec
redis-cli -p $GATEWAY_TEST_REDIS_PORT -n 1 --scan --pattern 'plugin-limit-count:v1:g1:*' | sort
--- response_body
plugin-limit-count:v1:g1:alice
plugin-limit-count:v1:g1:bob



=== TEST 9: sliding window over Redis (an hour: the windows are aligned to the clock)
--- admin
DELETE /apisix/admin/routes/2
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 2, "time_window": 3600, "window_type": "sliding", "policy": "redis", "redis_host": "127.0.0.1", "redis_port": ${{env GATEWAY_TEST_REDIS_PORT}}}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[200, 200]



=== TEST 10: 200, 200, 503
--- request eval
["GET /hello", "GET /hello", "GET /hello"]
--- error_code eval
[200, 200, 503]
--- response_headers eval
["X-RateLimit-Remaining: 1", "X-RateLimit-Remaining: 0", "X-RateLimit-Remaining: 0"]



=== TEST 11: Redis unreachable: 500 by default
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 2, "time_window": 60, "policy": "redis", "redis_host": "127.0.0.1", "redis_port": 1, "redis_timeout": 200}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 12: 500 with APISIX's body
--- request
GET /hello
--- error_code: 500
--- response_body
{"error_msg":"failed to limit count"}
--- error_log
failed to limit count



=== TEST 13: allow_degradation: the request goes through
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 2, "time_window": 60, "policy": "redis", "redis_host": "127.0.0.1", "redis_port": 1, "redis_timeout": 200, "allow_degradation": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 14: served without the headers
--- request
GET /hello
--- response_body
hello world
--- response_headers
!X-RateLimit-Limit
--- error_log
failed to limit count



=== TEST 15: redis-cluster: count 2 over the 3-node cluster
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 2, "time_window": 60, "key": "http_x_user", "policy": "redis-cluster", "redis_cluster_nodes": ${{env GATEWAY_TEST_REDIS_CLUSTER_JSON}}, "redis_cluster_name": "test"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 16: several keys (spread over the slots), each limited to 2
--- request eval
["GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["X-User: a", "X-User: b", "X-User: c", "X-User: a", "X-User: b", "X-User: a", "X-User: c"]
--- error_code eval
[200, 200, 200, 200, 200, 503, 200]
--- response_headers eval
["X-RateLimit-Remaining: 1", "X-RateLimit-Remaining: 1", "X-RateLimit-Remaining: 1", "X-RateLimit-Remaining: 0", "X-RateLimit-Remaining: 0", "X-RateLimit-Remaining: 0", "X-RateLimit-Remaining: 0"]



=== TEST 17: redis-cluster with the sliding window
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 1, "time_window": 3600, "window_type": "sliding", "key": "http_x_user", "policy": "redis-cluster", "redis_cluster_nodes": ${{env GATEWAY_TEST_REDIS_CLUSTER_JSON}}, "redis_cluster_name": "test"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 18: 200, 503 per key
--- request eval
["GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["X-User: a", "X-User: a", "X-User: z"]
--- error_code eval
[200, 503, 200]
