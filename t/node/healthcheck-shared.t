# Health checks are per node, not per worker: one worker probes, every worker skips what it
# found unhealthy.
workers(2);

__DATA__

=== TEST 1: a dead node checked actively: one worker probes, each increment is logged once
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "upstream": {"nodes": {"127.0.0.1:1980": 1, "127.0.0.1:1970": 1},
 "retries": 0, "checks": {"active": {"type": "tcp",
 "healthy": {"interval": 1}, "unhealthy": {"interval": 1, "tcp_failures": 2}}}}}
--- error_code: 201
--- error_log
127.0.0.1:1970 is unhealthy
--- timeout: 10
--- grep_error_log eval
qr/unhealthy TCP increment \(1\/2\)/
--- grep_error_log_out
unhealthy TCP increment (1/2)



=== TEST 2: and every worker skips the dead node (new connections land on both workers)
--- request eval
["GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello",
 "GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello"]
--- response_body eval
["hello world\n", "hello world\n", "hello world\n", "hello world\n", "hello world\n",
 "hello world\n", "hello world\n", "hello world\n", "hello world\n", "hello world\n",
 "hello world\n", "hello world\n"]
--- no_error_log
[error]



=== TEST 3: both workers report the node unhealthy on the Control API
--- exec
for i in 1 2 3 4 5 6; do
  curl -s http://127.0.0.1:9090/v1/healthcheck/routes/1 | $PYTHON -c 'import sys, json; print(sorted((n["port"], n["status"]) for n in json.load(sys.stdin)["nodes"]))'
done | sort -u
--- response_body
[(1970, 'unhealthy'), (1980, 'healthy')]
