# proxy-rewrite: URI (uri, regex_uri), Host, method and request headers sent upstream.
# Routes come from the standalone apisix.yaml until the Admin API lands.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: rewrite uri and host
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    methods: [GET]
    plugins:
      proxy-rewrite:
        uri: /plugin_proxy_rewrite
        host: apisix.iresty.com
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request
GET /hello HTTP/1.1
--- response_body
uri: /plugin_proxy_rewrite
host: apisix.iresty.com
scheme: http



=== TEST 2: rewrite headers (legacy map: set)
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      proxy-rewrite:
        uri: /uri/plugin_proxy_rewrite
        headers:
          X-Api-Version: v2
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request
GET /hello HTTP/1.1
--- more_headers
X-Api-Version:v1
--- response_body
uri: /uri/plugin_proxy_rewrite
host: localhost
x-api-version: v2
x-real-ip: 127.0.0.1



=== TEST 3: an empty value removes the header
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      proxy-rewrite:
        uri: /uri/plugin_proxy_rewrite
        headers:
          X-Api-Engine: APISIX
          X-Api-Test: ""
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request
GET /hello HTTP/1.1
--- more_headers
X-Api-Test: foo
X-Api-Engine: bar
--- response_body
uri: /uri/plugin_proxy_rewrite
host: localhost
x-api-engine: APISIX
x-real-ip: 127.0.0.1



=== TEST 4: add, set, remove (applied in that order); values with $var
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      proxy-rewrite:
        uri: /uri/plugin_proxy_rewrite
        headers:
          add:
            X-Added: "from $remote_addr"
          set:
            X-Set: "$arg_name"
            X-Multi: [a, b]
          remove:
            - X-Gone
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request
GET /hello?name=jack HTTP/1.1
--- more_headers
X-Gone: 1
X-Set: old
--- response_body
uri: /uri/plugin_proxy_rewrite
host: localhost
x-added: from 127.0.0.1
x-multi: ab
x-real-ip: 127.0.0.1
x-set: jack



=== TEST 5: the query string follows the new uri
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      proxy-rewrite:
        uri: /plugin_proxy_rewrite_args
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request
GET /hello?q=apisix&a=iresty HTTP/1.1
--- response_body
uri: /plugin_proxy_rewrite_args
a: iresty
q: apisix



=== TEST 6: regex_uri with captures
--- apisix_yaml
routes:
  - id: 1
    uri: /test/*
    plugins:
      proxy-rewrite:
        regex_uri: ["^/test/(.*)/(.*)/(.*)", "/$1_$2_$3"]
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request
GET /test/plugin/proxy/rewrite HTTP/1.1
--- response_body
uri: /plugin_proxy_rewrite
host: localhost
scheme: http



=== TEST 7: regex_uri that does not match: the uri goes as it came
--- request
GET /test/not/found HTTP/1.1
--- error_code: 404



=== TEST 8: uri wins over regex_uri
--- apisix_yaml
routes:
  - id: 1
    uri: /test/*
    plugins:
      proxy-rewrite:
        uri: /plugin_proxy_rewrite
        regex_uri: ["^/test/(.*)", "/$1"]
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request
GET /test/hello HTTP/1.1
--- response_body
uri: /plugin_proxy_rewrite
host: localhost
scheme: http



=== TEST 9: use_real_request_uri_unsafe sends the raw request uri
--- apisix_yaml
routes:
  - id: 1
    uri: /print_uri_detailed
    plugins:
      proxy-rewrite:
        use_real_request_uri_unsafe: true
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request
GET /print_uri_detailed?a=b%20c HTTP/1.1
--- response_body_like
a=b%20c



=== TEST 10: an invalid conf skips the route (logged), the others keep serving
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      proxy-rewrite:
        uri: "no-slash"
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
[404, 200]
--- error_log
failed to check the configuration of plugin proxy-rewrite err: property "uri" validation failed: failed to match pattern "^\\/.*" with "no-slash"
