# echo: the upstream's body replaced, prefixed or suffixed; response headers set
# (header_filter + body_filter on proxied responses, whole and streamed).
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: before_body, body and after_body with headers
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      echo:
        before_body: "before the body modification "
        body: "hello upstream"
        after_body: " after the body modification."
        headers:
          Location: "https://www.iresty.com"
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request
GET /hello
--- response_body chomp
before the body modification hello upstream after the body modification.
--- response_headers
Location: https://www.iresty.com



=== TEST 2: before_body and after_body around the upstream's body
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      echo:
        before_body: "before "
        after_body: "after\n"
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
#END
--- request
GET /hello
--- response_body
before hello world
after



=== TEST 3: a chunked upstream body streamed through the filter
--- apisix_yaml
routes:
  - id: 1
    uri: /hello_chunked
    plugins:
      echo:
        before_body: "["
        after_body: "]"
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello_chunked
--- response_body chomp
[hello world
]



=== TEST 4: body replaces a chunked body; Content-Length is not the upstream's
--- apisix_yaml
routes:
  - id: 1
    uri: /hello_chunked
    plugins:
      echo:
        body: "replaced"
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello_chunked
--- response_body chomp
replaced



=== TEST 5: headers need at least one body field (the route is skipped)
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      echo:
        headers:
          X-A: b
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- error_code: 404
--- error_log
failed to check the configuration of plugin echo err: object matches none of the requireds: ["before_body"] or ["body"] or ["after_body"]



=== TEST 6: _meta.disable: the plugin is configured but skipped
--- apisix_yaml
routes:
  - id: 1
    uri: /hello
    plugins:
      echo:
        body: "replaced"
        _meta:
          disable: true
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- response_body
hello world
