# Route conditions: methods, remote_addrs (CIDR), vars over headers/args/cookies,
# filter_func, priority among same-path routes, host routes before host-less ones.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: vars on a header, an argument and a cookie pick among same-path routes
--- apisix_yaml
routes:
  - id: by-header
    uri: /server_port
    priority: 3
    vars:
      - ["http_x_canary", "==", "yes"]
    upstream:
      nodes:
        "127.0.0.1:1981": 1
  - id: by-arg-or-cookie
    uri: /server_port
    priority: 2
    vars:
      - "OR"
      - ["arg_v", "in", ["2", "3"]]
      - ["cookie_group", "~~", "^beta-[0-9]+$"]
    upstream:
      nodes:
        "127.0.0.1:1982": 1
  - id: default
    uri: /server_port
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request eval
["GET /server_port", "GET /server_port", "GET /server_port?v=3", "GET /server_port?v=4", "GET /server_port", "GET /server_port"]
--- more_headers eval
["X-Canary: yes", "X-Canary: no", "", "", "Cookie: a=1; group=beta-12", "Cookie: group=alpha"]
--- response_body eval
["1981", "1980", "1982", "1980", "1982", "1980"]



=== TEST 2: a negated numeric comparison and a case-insensitive regex
--- apisix_yaml
routes:
  - id: old-clients
    uri: /server_port
    vars:
      - ["arg_version", "!", ">=", 2]
      - ["http_user_agent", "~*", "CURL"]
    upstream:
      nodes:
        "127.0.0.1:1981": 1
#END
--- request eval
["GET /server_port?version=1", "GET /server_port?version=2", "GET /server_port?version=1"]
--- more_headers eval
["User-Agent: curl/8", "User-Agent: curl/8", "User-Agent: wget"]
--- error_code eval
[200, 404, 404]



=== TEST 3: remote_addrs with CIDR: the test client (127.0.0.1) is inside 127.0.0.0/8 only
--- apisix_yaml
routes:
  - id: lan
    uri: /server_port
    remote_addrs: ["10.0.0.0/8", "::1"]
    upstream:
      nodes:
        "127.0.0.1:1981": 1
  - id: loopback
    uri: /server_port
    remote_addr: "127.0.0.0/8"
    upstream:
      nodes:
        "127.0.0.1:1982": 1
  - id: ipv6-only
    uri: /hello
    remote_addrs: ["2001:db8::/32"]
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request eval
["GET /server_port", "GET /hello"]
--- error_code eval
[200, 404]
--- response_body eval
["1982", "{\"error_msg\":\"404 Route Not Found\"}\n"]



=== TEST 4: priority among same-path routes, then methods
--- apisix_yaml
routes:
  - id: low
    uri: /server_port
    priority: -1
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: high-post
    uri: /server_port
    priority: 10
    methods: [POST]
    upstream:
      nodes:
        "127.0.0.1:1982": 1
  - id: mid
    uri: /server_port
    priority: 5
    methods: [GET, PUT]
    upstream:
      nodes:
        "127.0.0.1:1981": 1
#END
--- request eval
["GET /server_port", "POST /server_port", "DELETE /server_port"]
--- response_body eval
["1981", "1982", "1980"]



=== TEST 5: host routes are tried before host-less ones whatever the priority; wildcards
--- apisix_yaml
routes:
  - id: hostless
    uri: /server_port
    priority: 100
    upstream:
      nodes:
        "127.0.0.1:1980": 1
  - id: wildcard
    uri: /server_port
    hosts: ["*.foo.com"]
    upstream:
      nodes:
        "127.0.0.1:1981": 1
  - id: exact-host
    uri: /server_port
    host: api.foo.com
    upstream:
      nodes:
        "127.0.0.1:1982": 1
#END
--- request eval
["GET /server_port", "GET /server_port", "GET /server_port", "GET /server_port"]
--- more_headers eval
["Host: api.foo.com", "Host: www.foo.com", "Host: foo.com", "Host: API.FOO.COM:9080"]
--- response_body eval
["1982", "1981", "1980", "1982"]



=== TEST 6: filter_func (Python) on the request vars; one that raises is "no match"
--- apisix_yaml
routes:
  - id: filtered
    uri: /server_port
    filter_func: |
      def filter(vars):
          return vars["arg_team"] == "red" and vars["request_method"] == "GET"
    upstream:
      nodes:
        "127.0.0.1:1981": 1
  - id: broken
    uri: /hello
    filter_func: |
      def filter(vars):
          return vars["arg_n"] / 0
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request eval
["GET /server_port?team=red", "GET /server_port?team=blue", "GET /hello?n=1"]
--- error_code eval
[200, 404, 404]
--- response_body eval
["1981", "{\"error_msg\":\"404 Route Not Found\"}\n", "{\"error_msg\":\"404 Route Not Found\"}\n"]
--- error_log
route broken filter_func raised TypeError



=== TEST 7: a route with a bad vars expression is refused with its reason; others load
--- apisix_yaml
routes:
  - id: bad-vars
    uri: /server_port
    vars:
      - ["arg_a", "=~", "1"]
    upstream:
      nodes:
        "127.0.0.1:1981": 1
  - id: good
    uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request eval
["GET /hello", "GET /server_port"]
--- error_code eval
[200, 404]
--- error_log
invalid operator '=~'
