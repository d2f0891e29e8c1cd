# apisix.router.http: radixtree_uri_with_parameter: `:name` binds one segment, `*name` the
# rest; the values are the uri_param_<name> vars. (The mock upstream knows fixed paths only,
# so the routes below match /server_port through parameters.)
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: exact first, then a one-segment parameter, then the rest parameter
--- extra_yaml_config
apisix:
  router:
    http: radixtree_uri_with_parameter
--- apisix_yaml
routes:
  - id: one-segment
    uri: /:name
    priority: 1
    vars:
      - ["uri_param_name", "==", "server_port"]
      - ["arg_r", "==", "1"]
    upstream:
      nodes:
        "127.0.0.1:1981": 1
  - id: rest
    uri: /*path
    vars:
      - ["uri_param_path", "~~", "^(server_port|a/b)$"]
    upstream:
      nodes:
        "127.0.0.1:1982": 1
  - id: exact
    uri: /server_port
    vars:
      - ["arg_r", "==", "0"]
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request eval
["GET /server_port?r=0", "GET /server_port?r=1", "GET /server_port?r=2", "GET /a/b?r=1", "GET /a/c?r=1"]
--- error_code eval
[200, 200, 200, 404, 404]
--- response_body_like eval
["^1980\$", "^1981\$", "^1982\$", "<title>404 Not Found</title>", "Route Not Found"]



=== TEST 2: in the default router a colon is a literal character
--- apisix_yaml
routes:
  - id: literal
    uri: /:name
    upstream:
      nodes:
        "127.0.0.1:1981": 1
#END
--- request eval
["GET /server_port", "GET /:name"]
--- error_code eval
[404, 404]
--- response_body_like eval
["Route Not Found", "<title>404 Not Found</title>"]
