# Standalone mode: conf/apisix.yaml is watched and applied live, without a restart.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
workers(2);
run_tests;

__DATA__

=== TEST 1: a route from apisix.yaml
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request
GET /hello
--- response_body
hello world



=== TEST 2: a changed file is applied live on every worker
--- apisix_yaml
routes:
  - id: 1
    uri: /hello1
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request eval
["GET /hello1", "GET /hello1", "GET /hello1", "GET /hello1"]
--- response_body eval
["hello1 world\n", "hello1 world\n", "hello1 world\n", "hello1 world\n"]



=== TEST 3: the old route is gone
--- request
GET /hello
--- error_code: 404
--- response_body
{"error_msg":"404 Route Not Found"}



=== TEST 4: a file without #END is ignored and the last good config keeps serving
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
--- error_log
missing the final #END line, file ignored
--- request
GET /hello1
--- response_body
hello1 world



=== TEST 5: broken YAML is ignored too
--- apisix_yaml
routes: [
#END
--- error_log
invalid YAML
--- request
GET /hello1
--- response_body
hello1 world



=== TEST 6: an invalid route is logged and skipped, the valid ones serve
--- apisix_yaml
routes:
  - id: bad
    uri: 42
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: good
    uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- error_log
routes[0] (id bad) skipped: property "uri" validation failed
--- request
GET /hello
--- response_body
hello world



=== TEST 7: upstreams and services are referenced by id
--- apisix_yaml
upstreams:
  - id: u1
    nodes:
      "127.0.0.1:1981": 1
services:
  - id: s1
    upstream_id: u1
routes:
  - id: by-upstream
    uri: /server_port
    upstream_id: u1
  - id: by-service
    uri: /hello
    service_id: s1
#END
--- request eval
["GET /server_port", "GET /hello"]
--- response_body eval
["1981", "hello world\n"]



=== TEST 8: ${{VAR:=default}} is substituted in apisix.yaml
--- apisix_yaml
routes:
  - id: 1
    uri: /server_port
    upstream:
      nodes:
        "127.0.0.1:${{GATEWAY_TEST_UNSET_PORT:=1982}}": 1
#END
--- request
GET /server_port
--- response_body chomp
1982
