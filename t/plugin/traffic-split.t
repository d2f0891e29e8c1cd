# traffic-split: rules with match vars and weighted_upstreams (upstream_id, inline upstream,
# weight only = the route's own upstream), weighted round robin as lua-resty-balancer's.
# One worker: the round robin state is per worker, so counts over a cycle are exact here.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: weight is a non-negative integer; vars expressions are checked
--- admin
PUT /apisix/admin/routes/1
{"uri": "/server_port", "plugins": {"traffic-split": {"rules": [{"weighted_upstreams": [{"weight": -1}]}]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/1
{"uri": "/server_port", "plugins": {"traffic-split": {"rules": [{"match": [{"vars": [["arg_x", "~~~", "1"]]}], "weighted_upstreams": [{"weight": 1}]}]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[400, 400]
--- response_body_like eval
["failed to check the configuration of plugin traffic-split err: ", "failed to check the configuration of plugin traffic-split err: failed to validate the 'vars' expression"]



=== TEST 2: an inline upstream weighs 2, the route's own upstream 1
--- admin
PUT /apisix/admin/routes/1
{"uri": "/server_port", "plugins": {"traffic-split": {"rules": [{"weighted_upstreams": [{"upstream": {"name": "canary", "type": "roundrobin", "nodes": {"127.0.0.1:1981": 1}}, "weight": 2}, {"weight": 1}]}]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}, "type": "roundrobin"}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"traffic-split": {"rules": [{"weighted_upstreams": [{"weight": 2}, {"weight": 1}]}]}}}}



=== TEST 3: two cycles: 1981 four times, 1980 twice
--- exec
for i in 1 2 3 4 5 6; do curl -s http://127.0.0.1:1984/server_port; echo; done | sort | uniq -c | awk '{print $2 " x" $1}'
--- response_body
1980 x2
1981 x4



=== TEST 4: upstream_id and weight 0 (never chosen)
--- admin
PUT /apisix/admin/upstreams/u1
{"nodes": {"127.0.0.1:1982": 1}, "type": "roundrobin"}
PUT /apisix/admin/routes/1
{"uri": "/server_port", "plugins": {"traffic-split": {"rules": [{"weighted_upstreams": [{"upstream_id": "u1", "weight": 1}, {"upstream": {"nodes": {"127.0.0.1:1981": 1}}, "weight": 0}, {"weight": 1}]}]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}, "type": "roundrobin"}}
--- error_code eval
[201, 200]



=== TEST 5: 1982 and 1980 in turn
--- exec
for i in 1 2 3 4; do curl -s http://127.0.0.1:1984/server_port; echo; done | sort | uniq -c | awk '{print $2 " x" $1}'
--- response_body
1980 x2
1982 x2



=== TEST 6: match: the first rule whose vars pass (any of its match entries) decides
--- admin
PUT /apisix/admin/routes/1
{"uri": "/server_port", "plugins": {"traffic-split": {"rules": [
  {"match": [{"vars": [["http_release", "==", "new"]]}, {"vars": [["arg_beta", "==", "1"]]}],
   "weighted_upstreams": [{"upstream": {"nodes": {"127.0.0.1:1981": 1}}}]},
  {"match": [{"vars": [["http_release", "==", "old"]]}],
   "weighted_upstreams": [{"upstream_id": "u1"}]}]}},
 "upstream": {"nodes": {"127.0.0.1:1980": 1}, "type": "roundrobin"}}
--- error_code: 200



=== TEST 7: new -> 1981, ?beta=1 -> 1981, old -> 1982 (upstream u1), no match -> the route's 1980
--- request eval
["GET /server_port", "GET /server_port?beta=1", "GET /server_port", "GET /server_port"]
--- more_headers eval
["Release: new", "", "Release: old", "Release: other"]
--- response_body eval
["1981", "1981", "1982", "1980"]



=== TEST 8: an upstream_id that does not exist: 500 with APISIX's message
--- admin
PUT /apisix/admin/routes/1
{"uri": "/server_port", "plugins": {"traffic-split": {"rules": [{"weighted_upstreams": [{"upstream_id": "missing"}]}]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 9: 500
--- request
GET /server_port
--- error_code: 500
--- response_body eval
"failed to fetch upstream info by upstream id: missing"



=== TEST 10: the chosen upstream's own settings apply (pass_host rewrite, chash by a header)
--- admin
PUT /apisix/admin/routes/1
{"uri": "/uri", "plugins": {"traffic-split": {"rules": [{"weighted_upstreams": [{"upstream": {"type": "chash", "hash_on": "header", "key": "x-user", "pass_host": "rewrite", "upstream_host": "canary.test", "nodes": {"127.0.0.1:1981": 1, "127.0.0.1:1982": 1}}}]}]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 11: the Host is rewritten; one user always lands on the same node
--- exec
for i in 1 2 3 4; do curl -s -H 'X-User: alice' http://127.0.0.1:1984/uri | grep -i '^host:'; done | sort -u
--- response_body
host: canary.test



=== TEST 12: a route without traffic-split is unaffected; upstream_id as an integer
--- admin
PUT /apisix/admin/upstreams/2
{"nodes": {"127.0.0.1:1981": 1}, "type": "roundrobin"}
PUT /apisix/admin/routes/1
{"uri": "/server_port", "plugins": {"traffic-split": {"rules": [{"weighted_upstreams": [{"upstream_id": 2}]}]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/2
{"uri": "/hello", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[201, 200, 201]



=== TEST 13: 1981 via upstream 2; /hello as usual
--- request eval
["GET /server_port", "GET /hello"]
--- response_body eval
["1981", "hello world\n"]
