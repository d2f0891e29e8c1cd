# The Control API on 127.0.0.1:9090: schemas, config objects, health checks, gc.

__DATA__

=== TEST 1: a route and an upstream with an active health check
--- admin
PUT /apisix/admin/upstreams/1
{"nodes": {"127.0.0.1:1980": 1}, "checks": {"active": {"http_path": "/status", "healthy": {"interval": 1, "successes": 1}}}}
PUT /apisix/admin/routes/1
{"uri": "/hello", "upstream_id": "1"}
--- error_code eval
[201, 201]



=== TEST 2: the route as this worker holds it
--- exec
curl -s http://127.0.0.1:9090/v1/route/1
echo
curl -s -w '\n%{http_code}\n' http://127.0.0.1:9090/v1/route/9
--- response_body_like
^\{"key": "/apisix/routes/1", "value": \{.*"uri": "/hello".*\}\}
\{"error_msg": "route\[9\] not found"\}
404



=== TEST 3: lists of upstreams
--- exec
curl -s http://127.0.0.1:9090/v1/upstreams
--- response_body_like
^\[\{"key": "/apisix/upstreams/1", "value": \{.*\}\}\]$



=== TEST 4: the schemas this node validates with
--- exec
curl -s http://127.0.0.1:9090/v1/schema | $PYTHON -c 'import sys, json; d = json.load(sys.stdin); print(sorted(d)); print("route" in d["main"], "upstream" in d["main"])'
--- response_body
['main', 'plugins', 'stream-plugins']
True True



=== TEST 5: health of the upstream's nodes, once the checker has probed them
--- exec
request() { curl -s http://127.0.0.1:9090/v1/healthcheck/upstreams/1; }
for i in $(seq 1 50); do request | grep -q '"healthy"' && break; sleep 0.1; done
request | $PYTHON -c 'import sys, json; d = json.load(sys.stdin); n = d["nodes"][0]; print(n["ip"], n["port"], n["status"])'
curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:9090/v1/healthcheck/nothing/1
--- response_body
127.0.0.1 1980 healthy
400



=== TEST 6: gc, and unknown paths
--- exec
curl -s -o /dev/null -w '%{http_code}\n' -X POST http://127.0.0.1:9090/v1/gc
curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:9090/v1/nothing
--- response_body
200
404



=== TEST 7: enable_control false: no listener (curl: connection refused)
--- extra_yaml_config
apisix:
  enable_control: false
--- request
GET /hello
--- exec
curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:9090/v1/schema
--- response_body eval
["hello world\n"]
--- exit_code: 7
