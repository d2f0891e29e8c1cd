# Standalone apisix.yaml: consumer credentials as `consumers:` items, plugin metadata, the
# top-level `plugins:` list replacing the enabled plugins, and a plugin found in two global
# rules (dropped from both, logged).
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
workers(2);
run_tests;

__DATA__

=== TEST 1: a consumer and two credentials (`id: "<username>/credentials/<id>"`)
--- apisix_yaml
consumers:
  - username: jack
    plugins:
      echo:
        before_body: "jack\n"
  - id: jack/credentials/c1
    plugins:
      key-auth:
        key: key-one
  - id: jack/credentials/c2
    plugins:
      key-auth:
        key: key-two
  - id: ghost/credentials/c1
    plugins:
      key-auth:
        key: key-ghost
routes:
  - id: 1
    uri: /hello
    plugins:
      key-auth: {}
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request eval
["GET /hello?apikey=key-one", "GET /hello?apikey=key-two", "GET /hello?apikey=key-ghost", "GET /hello"]
--- error_code eval
[200, 200, 401, 401]
--- response_body_like eval
["^jack\nhello world\n\$", "^jack\nhello world\n\$", "Invalid API key", "Missing API key"]
--- error_log
a wild credential has appeared



=== TEST 2: a malformed credential id is logged and skipped
--- apisix_yaml
consumers:
  - username: jack
  - id: jack/credentials/
    plugins:
      key-auth:
        key: key-one
routes:
  - id: 1
    uri: /hello
    plugins:
      key-auth: {}
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello?apikey=key-one
--- error_code: 401
--- error_log
invalid credential id



=== TEST 3: plugin metadata from apisix.yaml (limit-count's header names)
--- apisix_yaml
plugin_metadata:
  - id: limit-count
    limit_header: X-Quota
routes:
  - id: 1
    uri: /hello
    plugins:
      limit-count:
        count: 5
        time_window: 60
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- response_headers
X-Quota: 5
!X-RateLimit-Limit



=== TEST 4: the top-level plugins list replaces config.yaml's: limit-count is off
--- apisix_yaml
plugins:
  - name: echo
  - name: key-auth
  - name: prometheus
    stream: true
routes:
  - id: 1
    uri: /hello
    plugins:
      echo:
        before_body: "echo on\n"
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: 2
    uri: /hello1
    plugins:
      limit-count:
        count: 5
        time_window: 60
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request eval
["GET /hello", "GET /hello1"]
--- response_body eval
["echo on\nhello world\n", "hello1 world\n"]
--- response_headers eval
["!X-RateLimit-Limit", "!X-RateLimit-Limit"]
--- error_log
plugin limit-count is not enabled



=== TEST 5: a plugin in two global rules runs in neither; the others run
--- apisix_yaml
global_rules:
  - id: 1
    plugins:
      response-rewrite:
        headers:
          set:
            X-G1: "1"
      echo:
        before_body: "g1\n"
  - id: 2
    plugins:
      response-rewrite:
        headers:
          set:
            X-G2: "2"
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
g1
hello world
--- response_headers
!X-G1
!X-G2
--- error_log
Found response-rewrite configured across different global rules. Removing it from execution list



=== TEST 6: in one rule only, it runs
--- apisix_yaml
global_rules:
  - id: 1
    plugins:
      response-rewrite:
        headers:
          set:
            X-G1: "1"
routes:
  - id: 1
    uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- response_headers
X-G1: 1
--- response_body
hello world
