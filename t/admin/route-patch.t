# A write that changes routes alone is patched onto the workers' tables (only those routes
# are built again): what every worker then serves must be what a full build serves — the
# priority and key order of routes sharing a path, deletes, routes left as they were — and
# after many patches in a row the workers build the whole table again, in the background.
workers(2);

__DATA__

=== TEST 1: an upstream and two routes, one of them on /server_port
--- admin
PUT /apisix/admin/upstreams/u1
{"nodes": {"127.0.0.1:1981": 1}}
PUT /apisix/admin/routes/r1
{"uri": "/server_port", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/r5
{"uri": "/hello", "upstream_id": "u1"}
--- error_code eval
[201, 201, 201]



=== TEST 2: a route of higher priority on the same path
--- admin
PUT /apisix/admin/routes/r3
{"uri": "/server_port", "priority": 1, "upstream_id": "u1"}
--- error_code: 201



=== TEST 3: it wins; the other routes still serve
--- request eval
["GET /server_port", "GET /server_port", "GET /hello"]
--- response_body eval
["1981", "1981", "hello world\n"]



=== TEST 4: another route of that priority, whose key sorts first
--- admin
PUT /apisix/admin/routes/r2
{"uri": "/server_port", "priority": 1, "upstream": {"nodes": {"127.0.0.1:1982": 1}}}
--- error_code: 201



=== TEST 5: it wins, as in a full build (same priority: key order)
--- request eval
["GET /server_port", "GET /server_port"]
--- response_body eval
["1982", "1982"]



=== TEST 6: that route moves to another path
--- admin
PATCH /apisix/admin/routes/r2
{"uri": "/elsewhere"}
--- error_code: 200



=== TEST 7: it left its old one
--- request eval
["GET /server_port", "GET /server_port"]
--- response_body eval
["1981", "1981"]



=== TEST 8: delete the two routes of priority 1
--- admin
DELETE /apisix/admin/routes/r3
DELETE /apisix/admin/routes/r2
--- error_code eval
[200, 200]



=== TEST 9: they are gone; the one left serves again
--- request eval
["GET /server_port", "GET /server_port", "GET /elsewhere"]
--- error_code eval
[200, 200, 404]
--- response_body eval
["1980", "1980", "{\"error_msg\":\"404 Route Not Found\"}\n"]



=== TEST 10: a changed upstream is a full build
--- admin
PUT /apisix/admin/upstreams/u1
{"nodes": {"127.0.0.1:1982": 1}}
PUT /apisix/admin/routes/r4
{"uri": "/server_port", "priority": 2, "upstream_id": "u1"}
--- error_code eval
[200, 201]
--- error_log eval
qr/config revision \d+ applied in [\d.]+ ms$/m



=== TEST 11: the routes naming it follow
--- request eval
["GET /server_port", "GET /server_port"]
--- response_body eval
["1982", "1982"]



=== TEST 12: after 100 patched writes the workers build the whole table again
--- exec
for i in $(seq 1 100); do
  curl -s -o /dev/null -X PUT http://127.0.0.1:9180/apisix/admin/routes/r9 \
    -d '{"uri": "/churn/'$i'", "plugins": {"proxy-rewrite": {"uri": "/hello"}}, "upstream_id": "u1"}'
done
curl -s http://127.0.0.1:1984/churn/100
curl -s -o /dev/null -w "%{http_code}\n" http://127.0.0.1:1984/churn/99
--- response_body
hello world
404
--- error_log eval
[qr/config revision \d+ applied in [\d.]+ ms \(routes patched\)$/m, qr/config revision \d+ applied in [\d.]+ ms$/m]
