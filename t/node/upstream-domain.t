# Domain-name upstream nodes: resolved off the event loop when the table is built, cached for
# apisix.dns_resolver_valid (30 s when unset), re-resolved in the background; a name that
# does not resolve skips its node with an error line, and an upstream left with no node
# answers 503, as APISIX.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: a node named by a host name (/etc/hosts) is proxied to
--- apisix_yaml
routes:
  - id: by-name
    uri: /server_port
    host: name.test
    upstream:
      nodes:
        "localhost:1980": 1
  - id: unresolvable
    uri: /server_port
    host: bad.test
    upstream:
      nodes:
        "no-such-node.invalid:1980": 1
  - id: mixed
    uri: /server_port
    host: mixed.test
    upstream:
      nodes:
        - host: no-such-node.invalid
          port: 1980
          weight: 1
        - host: localhost
          port: 1981
          weight: 1
  - id: pass-host-node
    uri: /uri
    host: node-host.test
    upstream:
      pass_host: node
      nodes:
        "localhost:1982": 1
#END
--- request
GET /server_port
--- more_headers
Host: name.test
--- response_body chomp
1980
--- error_log
dns resolver domain: no-such-node.invalid error:



=== TEST 2: a node whose name does not resolve is skipped; nothing left: 503
--- request eval
["GET /server_port", "GET /server_port", "GET /server_port"]
--- more_headers eval
["Host: bad.test", "Host: mixed.test", "Host: mixed.test"]
--- error_code eval
[503, 200, 200]
--- response_body_like eval
["503 Service", "^1981$", "^1981$"]
--- no_error_log
Traceback



=== TEST 3: pass_host node sends the node's name, not its address
--- request
GET /uri
--- more_headers
Host: node-host.test
--- response_body_like
host: localhost:1982
