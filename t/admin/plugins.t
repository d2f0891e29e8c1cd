# Admin API: the plugin endpoints, and plugin confs checked on write.

__DATA__

=== TEST 1: plugins/list: the enabled plugins by priority
--- admin
GET /apisix/admin/plugins/list
--- response_body_like
^\[.*"fault-injection".*"proxy-rewrite".*"echo".*\]$



=== TEST 2: plugins/list with a bad subsystem
--- admin
GET /apisix/admin/plugins/list?subsystem=nope
--- error_code: 400
--- response_body_json
{"error_msg": "invalid subsystem passed"}



=== TEST 3: a plugin's schema, with _meta injected
--- admin
GET /apisix/admin/plugins/proxy-rewrite
--- response_body_json_subset
{"type": "object"}
--- response_body_like
"_meta"



=== TEST 4: an unknown plugin
--- admin
GET /apisix/admin/plugins/no-such-plugin
--- error_code: 404
--- response_body_json
{"error_msg": "plugin not found in subsystem http"}



=== TEST 5: every plugin at once
--- admin
GET /apisix/admin/plugins?all=true
--- response_body_like
"proxy-rewrite":\{.*"priority":1008



=== TEST 6: reload refuses other methods
--- admin
GET /apisix/admin/plugins/reload
--- error_code: 405
--- response_body_json
{"error_msg": "please use PUT method to reload the plugins, GET method is not allowed."}



=== TEST 7: a plugin conf that breaks its schema
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"proxy-rewrite": {"uri": 1}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_like
^\{"error_msg":"failed to check the configuration of plugin proxy-rewrite err: .*"\}$



=== TEST 8: a plugin conf that is not an object
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"proxy-rewrite": 1}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_json
{"error_msg": "invalid plugin conf 1 for plugin [proxy-rewrite]"}



=== TEST 9: _meta.disable skips the schema check
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"proxy-rewrite": {"uri": 1, "_meta": {"disable": true}}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201



=== TEST 10: a route whose plugin rewrites the upstream URI serves through it
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"proxy-rewrite": {"uri": "/uri"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 11: the rewrite applies
--- request
GET /hello
--- response_body_like
uri: /uri



=== TEST 12: plugin metadata for a real plugin is checked against its metadata schema
--- admin
PUT /apisix/admin/plugin_metadata/echo
{}
GET /apisix/admin/plugin_metadata/echo
--- error_code eval
[201, 200]



=== TEST 13: reload: done, and the route keeps serving
--- admin
PUT /apisix/admin/plugins/reload
--- response_body eval
"done"
--- error_log
plugins reloaded



=== TEST 14: after the reload the route still rewrites
--- request
GET /hello
--- response_body_like
uri: /uri



=== TEST 15: the enabled list is in etcd under /apisix/plugins, as APISIX keeps it
--- exec
curl -s "$GATEWAY_TEST_ETCD/v3/kv/range" -d '{"key": "'$(printf /apisix/plugins | base64)'"}' \
  | $PYTHON -c 'import sys, json, base64; v = json.loads(base64.b64decode(json.load(sys.stdin)["kvs"][0]["value"])); print(isinstance(v, list) and {"name": "echo"} in v)'
--- response_body
True
