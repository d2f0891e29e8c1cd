# The plugin system: phase order, global rules, exits, _meta (disable, filter, priority,
# error_response, pre_function), merge precedence, a plugin that raises. The test plugin
# phase-probe lives in t/lib/plugins (apisix.extra_plugin_paths).
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: phase order: global rule then route in each phase, header_filter, log after
--- extra_yaml_config
apisix:
  extra_plugin_paths:
    - "${{GATEWAY_TEST_PLUGINS}}"
plugins:
  - fault-injection
  - proxy-rewrite
  - echo
  - phase-probe
--- apisix_yaml
global_rules:
  - id: 1
    plugins:
      phase-probe:
        tag: g
routes:
  - id: 1
    uri: /hello
    plugins:
      phase-probe:
        tag: r
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- response_body
hello world
--- response_headers
X-Trail: g:rewrite,r:rewrite,g:access,r:access,g:before_proxy,r:before_proxy,g:header_filter,r:header_filter
X-Status-Seen: 200
--- error_log
phase-probe log: g route 1 status 200
phase-probe log: r route 1 status 200



=== TEST 2: global rules run for a request no route matches, then 404
--- extra_yaml_config
apisix:
  extra_plugin_paths:
    - "${{GATEWAY_TEST_PLUGINS}}"
plugins:
  - fault-injection
  - proxy-rewrite
  - echo
  - phase-probe
--- request
GET /not_a_route
--- error_code: 404
--- response_body
{"error_msg":"404 Route Not Found"}
--- response_headers
X-Trail: g:rewrite,g:access,g:header_filter



=== TEST 3: a plugin exit: dict body as JSON + newline; header_filter still runs
--- extra_yaml_config
apisix:
  extra_plugin_paths:
    - "${{GATEWAY_TEST_PLUGINS}}"
plugins:
  - fault-injection
  - proxy-rewrite
  - echo
  - phase-probe
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      phase-probe:
        tag: r
        exit_in: access
        status: 401
        body:
          message: Missing API key in request
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- error_code: 401
--- response_body
{"message":"Missing API key in request"}
--- response_headers
X-Trail: r:rewrite,r:access,r:header_filter
X-Status-Seen: 401



=== TEST 4: _meta.error_response replaces the body of an exit >= 400
--- extra_yaml_config
apisix:
  extra_plugin_paths:
    - "${{GATEWAY_TEST_PLUGINS}}"
plugins:
  - fault-injection
  - proxy-rewrite
  - echo
  - phase-probe
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      phase-probe:
        exit_in: rewrite
        status: 403
        body: "the real reason"
        _meta:
          error_response:
            message: denied
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- error_code: 403
--- response_body
{"message":"denied"}



=== TEST 5: an exception in a plugin: 500, logged with route and plugin, the worker lives
--- extra_yaml_config
apisix:
  extra_plugin_paths:
    - "${{GATEWAY_TEST_PLUGINS}}"
plugins:
  - fault-injection
  - proxy-rewrite
  - echo
  - phase-probe
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      phase-probe:
        raise_in: access
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: 2
    uri: /hello1
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request eval
["GET /hello", "GET /hello1"]
--- error_code eval
[500, 200]
--- error_log
plugin phase-probe failed in the access phase, route 1
RuntimeError: probe failure



=== TEST 6: _meta.filter: the plugin runs only when the expression matches
--- extra_yaml_config
apisix:
  extra_plugin_paths:
    - "${{GATEWAY_TEST_PLUGINS}}"
plugins:
  - fault-injection
  - proxy-rewrite
  - echo
  - phase-probe
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      fault-injection:
        abort:
          http_status: 403
          body: "filtered in\n"
        _meta:
          filter:
            - ["arg_block", "==", "yes"]
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request eval
["GET /hello?block=yes", "GET /hello?block=no"]
--- error_code eval
[403, 200]
--- response_body eval
["filtered in\n", "hello world\n"]



=== TEST 7: _meta.priority reorders: fault-injection after proxy-rewrite sees the new $uri
--- extra_yaml_config
apisix:
  extra_plugin_paths:
    - "${{GATEWAY_TEST_PLUGINS}}"
plugins:
  - fault-injection
  - proxy-rewrite
  - echo
  - phase-probe
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      proxy-rewrite:
        uri: /hello1
      fault-injection:
        abort:
          http_status: 200
          body: "uri: $uri\n"
        _meta:
          priority: 0
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: 2
    uri: /hello2
    plugins:
      proxy-rewrite:
        uri: /hello1
      fault-injection:
        abort:
          http_status: 200
          body: "uri: $uri\n"
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request eval
["GET /hello", "GET /hello2"]
--- response_body eval
["uri: /hello1\n", "uri: /hello2\n"]



=== TEST 8: _meta.pre_function runs before the plugin in each phase
--- extra_yaml_config
apisix:
  extra_plugin_paths:
    - "${{GATEWAY_TEST_PLUGINS}}"
plugins:
  - fault-injection
  - proxy-rewrite
  - echo
  - phase-probe
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      phase-probe:
        tag: r
        _meta:
          pre_function: |
            def pre(conf, ctx):
                ctx.data.setdefault("trail", []).append("pre")
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- response_headers
X-Trail: pre,r:rewrite,pre,r:access,pre,r:before_proxy,pre,r:header_filter



=== TEST 9: merge: route > plugin_config > service (body_filter also sees plugin exits)
--- extra_yaml_config
apisix:
  extra_plugin_paths:
    - "${{GATEWAY_TEST_PLUGINS}}"
plugins:
  - fault-injection
  - proxy-rewrite
  - echo
  - phase-probe
--- apisix_yaml
services:
  - id: s1
    plugins:
      echo:
        after_body: "from service\n"
      fault-injection:
        abort:
          http_status: 200
          body: "service abort\n"
          vars:
            - - ["arg_who", "==", "service"]
    upstream:
      nodes:
        "127.0.0.1:1980": 1
plugin_configs:
  - id: pc1
    plugins:
      echo:
        after_body: "from plugin_config\n"
routes:
  - id: 1
    uri: /hello
    service_id: s1
    plugin_config_id: pc1
  - id: 2
    uri: /hello1
    service_id: s1
    plugin_config_id: pc1
    plugins:
      echo:
        after_body: "from route\n"
#END
--- request eval
["GET /hello", "GET /hello1", "GET /hello?who=service"]
--- response_body eval
["hello world\nfrom plugin_config\n", "hello1 world\nfrom route\n", "service abort\nfrom plugin_config\n"]



=== TEST 10: a route without plugins pays nothing: no ctx, no plugin phase
--- extra_yaml_config
apisix:
  extra_plugin_paths:
    - "${{GATEWAY_TEST_PLUGINS}}"
plugins:
  - fault-injection
  - proxy-rewrite
  - echo
  - phase-probe
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- response_body
hello world
--- response_headers
!X-Trail
--- no_error_log
phase-probe log



=== TEST 11: an enabled plugin module that is broken stops `test` (and `start`) with its name
--- exec
mkdir -p bad && printf 'NAME = "broken"\nPRIORITY = 1\nVERSION = 0.1\n' > bad/broken.py
printf 'apisix:\n  extra_plugin_paths: [bad]\ndeployment:\n  role: data_plane\n  role_data_plane:\n    config_provider: yaml\nplugins: [echo, broken]\n' > conf/bad.yaml
$GATEWAY test -p "$PREFIX" -c conf/bad.yaml
--- exit_code: 1
--- response_body_like
plugin broken \(.*bad/broken.py\): missing required attribute SCHEMA
