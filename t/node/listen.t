# apisix.node_listen forms and IPv6 listeners.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: the default listeners include [::] (apisix.enable_ipv6)
--- apisix_yaml
routes:
  - uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /hello
--- response_body
hello world



=== TEST 2: the same route over IPv6 loopback
--- exec
curl -s -g "http://[::1]:1984/hello"
--- response_body
hello world



=== TEST 3: node_listen as a list of {ip, port}
--- extra_yaml_config
apisix:
  enable_ipv6: false
  node_listen:
    - ip: 127.0.0.1
      port: 1984
    - port: 1985
--- request
GET /hello
--- response_body
hello world



=== TEST 4: the second listener answers too; no IPv6 listener this time
--- exec
curl -s "http://127.0.0.2:1985/hello"
curl -s -g -o /dev/null -w "%{http_code}\n" "http://[::1]:1984/hello" || true
--- response_body
hello world
000
