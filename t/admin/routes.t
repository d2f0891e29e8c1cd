# Admin API v3: routes, the envelope of every method, and a write reaching the data path.

__DATA__

=== TEST 1: PUT creates (201) and the route serves at once
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"key": "/apisix/routes/1", "value": {"id": "1", "uri": "/hello",
 "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}}}
--- response_headers
Content-Type: application/json
X-API-VERSION: v3
Access-Control-Allow-Origin: *
--- response_headers_like
Server: APISIX/\d+\.\d+\.\d+



=== TEST 2: the data path serves it
--- request
GET /hello
--- response_body
hello world



=== TEST 3: PUT again replaces (200) and keeps create_time
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "methods": ["GET"], "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200
--- response_body_like
"create_time":\d+.*"update_time":\d+



=== TEST 4: GET one: the stored object with etcd's indexes
--- admin
GET /apisix/admin/routes/1
--- response_body_json_subset
{"key": "/apisix/routes/1", "value": {"uri": "/hello", "methods": ["GET"]}}
--- response_body_like
"createdIndex":\d+,"modifiedIndex":\d+



=== TEST 5: GET the list
--- admin
GET /apisix/admin/routes
--- response_body_json_subset
{"total": 1, "list": [{"key": "/apisix/routes/1", "value": {"id": "1"}}]}



=== TEST 6: GET a missing route
--- admin
GET /apisix/admin/routes/nope
--- error_code: 404
--- response_body_json
{"message": "Key not found"}



=== TEST 7: POST gets a 20-digit id from etcd's revision
--- admin
POST /apisix/admin/routes
{"uri": "/post", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_like
"key":"/apisix/routes/\d{20}".*"id":"\d{20}"



=== TEST 8: POST with an id is refused
--- admin
POST /apisix/admin/routes
{"id": "3", "uri": "/post", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_json
{"error_msg": "wrong route id, do not need it"}



=== TEST 9: PUT without an id
--- admin
PUT /apisix/admin/routes
{"uri": "/x", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_json
{"error_msg": "missing route id"}



=== TEST 10: body id differs from the path
--- admin
PUT /apisix/admin/routes/1
{"id": "2", "uri": "/x", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_json
{"error_msg": "wrong route id"}



=== TEST 11: not JSON
--- admin
PUT /apisix/admin/routes/1
{"uri": 
--- error_code: 400
--- response_body_like
^\{"error_msg":"invalid request body: .*","req_body":"\{\\"uri\\":\s?"\}$



=== TEST 12: empty body
--- admin
PUT /apisix/admin/routes/1
--- error_code: 400
--- response_body_json
{"error_msg": "missing configurations"}



=== TEST 13: schema violation in APISIX's words
--- admin
PUT /apisix/admin/routes/1
{"uri": 1, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_json
{"error_msg": "invalid configuration: property \"uri\" validation failed: wrong type: expected string, got number"}



=== TEST 14: host and hosts together
--- admin
PUT /apisix/admin/routes/1
{"uri": "/x", "host": "a.com", "hosts": ["b.com"], "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_json
{"error_msg": "only one of host or hosts is allowed"}



=== TEST 15: client-set create_time is forbidden on PUT
--- admin
PUT /apisix/admin/routes/1
{"uri": "/x", "create_time": 1, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_json
{"error_msg": "the property is forbidden:  create_time"}



=== TEST 16: dangling upstream_id
--- admin
PUT /apisix/admin/routes/1
{"uri": "/x", "upstream_id": "9"}
--- error_code: 400
--- response_body_json
{"error_msg": "failed to fetch upstream info by upstream id [9], response code: 404"}



=== TEST 17: unknown plugin
--- admin
PUT /apisix/admin/routes/1
{"uri": "/x", "plugins": {"no-such-plugin": {}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_json
{"error_msg": "unknown plugin [no-such-plugin]"}



=== TEST 18: PATCH a sub-path, then the data path sees it
--- admin
PATCH /apisix/admin/routes/1/uri
"/status"
--- response_body_json_subset
{"key": "/apisix/routes/1", "value": {"uri": "/status", "methods": ["GET"]}}



=== TEST 18b: the data path serves the patched uri
--- request
GET /status
--- response_body
ok



=== TEST 19: PATCH merges; null deletes
--- admin
PATCH /apisix/admin/routes/1
{"methods": null, "name": "r1"}
--- response_body_like
"name":"r1"
--- response_body_unlike
"methods"



=== TEST 20: PATCH a missing route
--- admin
PATCH /apisix/admin/routes/nope
{"name": "x"}
--- error_code: 404
--- response_body_json
{"message": "Key not found"}



=== TEST 21: PATCH through something that is not an object
--- admin
PATCH /apisix/admin/routes/1/uri/deeper
"x"
--- error_code: 400
--- response_body_json
{"error_msg": "invalid sub-path: /uri"}



=== TEST 22: DELETE, then the route is gone from the data path
--- admin
DELETE /apisix/admin/routes/1
--- response_body_json
{"deleted": "1", "key": "/apisix/routes/1"}



=== TEST 22b: the data path no longer has it
--- request
GET /status
--- error_code: 404



=== TEST 23: DELETE a missing route
--- admin
DELETE /apisix/admin/routes/1
--- error_code: 404
--- response_body_json
{"message": "Key not found"}



=== TEST 24: unknown resource type
--- admin
GET /apisix/admin/nothing
--- error_code: 404
--- response_body_json
{"error_msg": "Unsupported resource type: nothing"}



=== TEST 25: HEAD /apisix/admin answers for probes
--- admin
HEAD /apisix/admin
--- response_headers_like
Server: APISIX/\d+\.\d+\.\d+



=== TEST 26: CORS preflight
--- admin
OPTIONS /apisix/admin/routes
--- response_headers
Access-Control-Allow-Methods: POST, GET, PUT, OPTIONS, DELETE, PATCH
Access-Control-Allow-Headers: *
Access-Control-Max-Age: 3600
Content-Length: 0



=== TEST 27: ?ttl= must be a number
--- admin
PUT /apisix/admin/routes/t?ttl=abc
{"uri": "/ttl", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_json
{"error_msg": "invalid argument ttl: should be a number"}



=== TEST 28: ?ttl= attaches a lease: the route disappears by itself
--- timeout: 15
--- exec
curl -s -o /dev/null -w '%{http_code}\n' -X PUT 'http://127.0.0.1:9180/apisix/admin/routes/ttl?ttl=1' \
  -d '{"uri": "/ttl", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}'
curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:9180/apisix/admin/routes/ttl
for i in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9180/apisix/admin/routes/ttl)" = 404 ] && break
  sleep 0.1
done
curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:9180/apisix/admin/routes/ttl
--- response_body
201
200
404



=== TEST 29: a body over 1.5 MiB is refused
--- exec
head -c 2000000 /dev/zero | tr '\0' 'a' > big.json
curl -s -w '\n%{http_code}\n' -X PUT http://127.0.0.1:9180/apisix/admin/routes/big --data-binary @big.json
--- response_body
{"error_msg":"request body too large"}
413
