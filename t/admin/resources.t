# Admin API v3: the other resource kinds, references between them, and protected deletes.

__DATA__

=== TEST 1: an upstream
--- admin
PUT /apisix/admin/upstreams/1
{"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
--- error_code: 201
--- response_body_json_subset
{"key": "/apisix/upstreams/1", "value": {"id": "1", "type": "roundrobin"}}



=== TEST 2: a service using it, and a route using the service
--- admin
PUT /apisix/admin/services/1
{"upstream_id": "1"}
PUT /apisix/admin/routes/1
{"uri": "/hello", "service_id": "1"}
--- error_code eval
[201, 201]



=== TEST 3: the route answers through service and upstream
--- request
GET /hello
--- response_body
hello world



=== TEST 4: the upstream cannot go while the service uses it
--- admin
DELETE /apisix/admin/upstreams/1
--- error_code: 400
--- response_body_json
{"error_msg": "can not delete this upstream, service [1] is still using it now"}



=== TEST 5: nor the service while the route uses it
--- admin
DELETE /apisix/admin/services/1
--- error_code: 400
--- response_body_json
{"error_msg": "can not delete this service directly, route [1] is still using it now"}



=== TEST 6: ?force=true deletes anyway; the route then answers 404 as APISIX does
--- admin
DELETE /apisix/admin/services/1?force=true
--- response_body_json
{"deleted": "1", "key": "/apisix/services/1"}
--- error_log
route 1: failed to fetch service configuration by id: 1



=== TEST 7: the route without its service
--- request
GET /hello
--- error_code: 404
--- ignore_error_log



=== TEST 7b: clean up the dangling route
--- admin
DELETE /apisix/admin/routes/1
--- ignore_error_log



=== TEST 8: a dangling service_id is refused
--- admin
PUT /apisix/admin/routes/2
{"uri": "/x", "service_id": "404"}
--- error_code: 400
--- response_body_json
{"error_msg": "failed to fetch service info by service id [404], response code: 404"}



=== TEST 9: chash without key
--- admin
PUT /apisix/admin/upstreams/2
{"type": "chash", "nodes": {"127.0.0.1:1980": 1}}
--- error_code: 400
--- response_body_json
{"error_msg": "missing key"}



=== TEST 10: consumers: POST is not supported
--- admin
POST /apisix/admin/consumers
{"username": "jack"}
--- error_code: 405
--- response_body_json
{"error_msg": "not supported `POST` method for consumer"}



=== TEST 11: a consumer by PUT /consumers (username in the body); no id is written
--- admin
PUT /apisix/admin/consumers
{"username": "jack", "desc": "first"}
--- error_code: 201
--- response_body_json_subset
{"key": "/apisix/consumers/jack", "value": {"username": "jack", "desc": "first"}}
--- response_body_unlike
"id"



=== TEST 12: path and body usernames differ
--- admin
PUT /apisix/admin/consumers/jack
{"username": "rose"}
--- error_code: 400
--- response_body_json
{"error_msg": "wrong username"}



=== TEST 13: a credential for a missing consumer
--- admin
PUT /apisix/admin/consumers/nobody/credentials/c1
{"plugins": {}}
--- error_code: 404
--- response_body_json
{"error_msg": "consumer not found"}



=== TEST 14: a credential, listed under its consumer and not in the consumer list
--- admin
PUT /apisix/admin/consumers/jack/credentials/c1
{"desc": "cred"}
GET /apisix/admin/consumers/jack/credentials
GET /apisix/admin/consumers
--- error_code eval
[201, 200, 200]
--- response_body_json_subset eval
['{"key": "/apisix/consumers/jack/credentials/c1", "value": {"id": "c1", "desc": "cred"}}',
 '{"total": 1, "list": [{"key": "/apisix/consumers/jack/credentials/c1"}]}',
 '{"total": 1, "list": [{"key": "/apisix/consumers/jack"}]}']



=== TEST 15: deleting the consumer deletes its credentials
--- admin
DELETE /apisix/admin/consumers/jack
GET /apisix/admin/consumers/jack/credentials/c1
--- error_code eval
[200, 404]



=== TEST 16: a consumer group in use cannot be deleted
--- admin
PUT /apisix/admin/consumer_groups/g1
{"plugins": {}}
PUT /apisix/admin/consumers/rose
{"group_id": "g1"}
DELETE /apisix/admin/consumer_groups/g1
--- error_code eval
[201, 201, 400]
--- response_body_like eval
["", "", "can not delete this consumer group, consumer \\[rose\\] is still using it now"]



=== TEST 17: a consumer with a dangling group
--- admin
PUT /apisix/admin/consumers/tom
{"group_id": "nope"}
--- error_code: 400
--- response_body_json
{"error_msg": "failed to fetch consumer group info by consumer group id [nope], response code: 404"}



=== TEST 18: consumer groups do not take POST
--- admin
POST /apisix/admin/consumer_groups
{"plugins": {}}
--- error_code: 405
--- response_body_json
{"error_msg": "not supported `POST` method for consumer group"}



=== TEST 19: an SSL: the key is encrypted at rest and never shown
--- admin
PUT /apisix/admin/ssls/1
{"cert": ${{file t/certs/test.crt}}, "key": ${{file t/certs/test.key}}, "snis": ["test.com"]}
GET /apisix/admin/ssls/1
--- error_code eval
[201, 200]
--- response_body_json_subset eval
['{"key": "/apisix/ssls/1", "value": {"snis": ["test.com"]}}',
 '{"key": "/apisix/ssls/1", "value": {"snis": ["test.com"]}}']
--- response_body_unlike
PRIVATE KEY|"key":"-----



=== TEST 20: etcd holds the key encrypted
--- exec
curl -s "$GATEWAY_TEST_ETCD/v3/kv/range" -d '{"key": "'$(printf /apisix/ssls/1 | base64)'"}' \
  | $PYTHON -c 'import sys, json, base64; v = json.loads(base64.b64decode(json.load(sys.stdin)["kvs"][0]["value"])); print("plain" if "PRIVATE KEY" in v["key"] else "encrypted")'
--- response_body
encrypted



=== TEST 21: a key that is not the certificate's
--- admin
PUT /apisix/admin/ssls/2
{"cert": ${{file t/certs/test.crt}}, "key": ${{file t/certs/other.key}}, "sni": "test.com"}
--- error_code: 400
--- response_body_like
failed to match the cert and key



=== TEST 22: RSA and ECDSA pairs on one SNI
--- admin
PUT /apisix/admin/ssls/3
{"cert": ${{file t/certs/test.crt}}, "key": ${{file t/certs/test.key}},
 "certs": [${{file t/certs/test-ecc.crt}}], "keys": [${{file t/certs/test-ecc.key}}],
 "snis": ["test.com"]}
--- error_code: 201
--- response_body_unlike
"keys"



=== TEST 23: mismatched certs and keys
--- admin
PUT /apisix/admin/ssls/3
{"cert": ${{file t/certs/test.crt}}, "key": ${{file t/certs/test.key}},
 "certs": [${{file t/certs/test-ecc.crt}}], "snis": ["test.com"]}
--- error_code: 400
--- response_body_json
{"error_msg": "mismatched number of certs and keys"}



=== TEST 24: global rules take no POST
--- admin
POST /apisix/admin/global_rules
{"plugins": {}}
--- error_code: 405
--- response_body_json
{"error_msg": "not supported `POST` method for global rule"}



=== TEST 25: a plugin config in use by a route cannot be deleted
--- admin
PUT /apisix/admin/plugin_configs/p1
{"plugins": {}}
PUT /apisix/admin/routes/3
{"uri": "/pc", "plugin_config_id": "p1", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
DELETE /apisix/admin/plugin_configs/p1
--- error_code eval
[201, 201, 400]
--- response_body_like eval
["", "", "can not delete this plugin config, route \\[3\\] is still using it now"]



=== TEST 26: stream routes when stream mode is off
--- admin
GET /apisix/admin/stream_routes
--- error_code: 400
--- response_body_json
{"error_msg": "stream mode is disabled, can not add stream routes"}



=== TEST 27: protos do not take PATCH
--- admin
PATCH /apisix/admin/protos/1
{"content": "x"}
--- error_code: 405
--- response_body_json
{"error_msg": "not supported `PATCH` method for proto"}



=== TEST 28: a vault secret; its id carries the manager
--- admin
PUT /apisix/admin/secrets/vault/s1
{"uri": "http://127.0.0.1:8200", "prefix": "kv/apisix", "token": "root"}
GET /apisix/admin/secrets
--- error_code eval
[201, 200]
--- response_body_json_subset eval
['{"key": "/apisix/secrets/vault/s1", "value": {"id": "vault/s1"}}',
 '{"total": 1, "list": [{"key": "/apisix/secrets/vault/s1"}]}']



=== TEST 29: plugin metadata for an unknown plugin
--- admin
PUT /apisix/admin/plugin_metadata/no-such-plugin
{}
--- error_code: 400
--- response_body_json
{"error_msg": "invalid plugin name"}



=== TEST 30: list filters and paging
--- admin
PUT /apisix/admin/routes/10
{"uri": "/a/10", "name": "alpha", "labels": {"env": "prod"}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/11
{"uri": "/b/11", "name": "beta", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
GET /apisix/admin/routes?name=alp
GET /apisix/admin/routes?label=env
GET /apisix/admin/routes?uri=/b/
GET /apisix/admin/routes?page=1&page_size=10
GET /apisix/admin/routes?page=1&page_size=5
--- error_code eval
[201, 201, 200, 200, 200, 200, 400]
--- response_body_like eval
["", "", '"total":1', '"total":1', '"total":1', '"total":3', "^page_size must be between 10 and 500\$"]
