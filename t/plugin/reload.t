# PUT /apisix/admin/plugins/reload: a plugin added to config.yaml's list becomes usable on
# every worker, without a restart and without failing a request; the reload answers once every
# worker has the new plugins, so the next Admin write may use them whichever worker takes it.
workers(2);

__DATA__

=== TEST 1: a route, with a user plugin directory configured
--- extra_yaml_config
apisix:
  extra_plugin_paths: [myplugins]
plugins:
  - echo
  - proxy-rewrite
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201



=== TEST 2: the new plugin is unknown before the reload
--- extra_yaml_config
apisix:
  extra_plugin_paths: [myplugins]
plugins:
  - echo
  - proxy-rewrite
--- admin
PUT /apisix/admin/routes/2
{"uri": "/hello1", "plugins": {"hello-header": {}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_json
{"error_msg": "unknown plugin [hello-header]"}



=== TEST 3: write the plugin, list it, reload while clients hammer the gateway
--- extra_yaml_config
apisix:
  extra_plugin_paths: [myplugins]
plugins:
  - echo
  - proxy-rewrite
--- load
GET /hello
--- exec
mkdir -p myplugins
cat > myplugins/hello_header.py <<'PY'
"""A test plugin: says hello in a response header."""
NAME = "hello-header"
PRIORITY = 100
VERSION = 0.1
SCHEMA = {"type": "object", "properties": {"value": {"type": "string", "default": "yes"}}}


def header_filter(conf, ctx):
    ctx.set_response_header("X-Hello", conf["value"])
PY
sed -i 's/^- proxy-rewrite$/- proxy-rewrite\n- hello-header/' conf/config.yaml
curl -s -X PUT http://127.0.0.1:9180/apisix/admin/plugins/reload; echo
curl -s -o /dev/null -w '%{http_code}\n' -X PUT http://127.0.0.1:9180/apisix/admin/routes/2 \
  -d '{"uri": "/hello1", "plugins": {"hello-header": {}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}'
--- response_body
done
201
--- error_log
plugins reloaded



=== TEST 4: every worker runs it (new connections land on both)
--- extra_yaml_config
apisix:
  extra_plugin_paths: [myplugins]
plugins:
  - echo
  - proxy-rewrite
--- request eval
["GET /hello1", "GET /hello1", "GET /hello1", "GET /hello1", "GET /hello1", "GET /hello1"]
--- response_headers
X-Hello: yes



=== TEST 5: the reload answers once every worker has the new plugins (one slow to import)
--- extra_yaml_config
apisix:
  extra_plugin_paths: [myplugins]
plugins:
  - echo
  - proxy-rewrite
--- exec
cat > myplugins/slow_header.py <<'PY'
"""A test plugin whose import takes a while (the worker serves meanwhile): says slow."""
import gevent

gevent.sleep(0.4)
NAME = "slow-header"
PRIORITY = 101
VERSION = 0.1
SCHEMA = {"type": "object"}


def header_filter(conf, ctx):
    ctx.set_response_header("X-Slow", "yes")
PY
sed -i 's/^- proxy-rewrite$/- proxy-rewrite\n- hello-header\n- slow-header/' conf/config.yaml
curl -s -X PUT http://127.0.0.1:9180/apisix/admin/plugins/reload; echo
for i in 1 2 3 4; do
  curl -s -o /dev/null -w '%{http_code}\n' -X PUT http://127.0.0.1:9180/apisix/admin/routes/3 \
    -d '{"uri": "/hello2", "plugins": {"slow-header": {}, "proxy-rewrite": {"uri": "/hello"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}'
done
--- response_body
done
201
200
200
200



=== TEST 6: and both workers run it
--- extra_yaml_config
apisix:
  extra_plugin_paths: [myplugins]
plugins:
  - echo
  - proxy-rewrite
--- request eval
["GET /hello2", "GET /hello2", "GET /hello2", "GET /hello2", "GET /hello2", "GET /hello2"]
--- response_headers
X-Slow: yes
