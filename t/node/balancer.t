# Upstream balancing observed through the mock upstream's /server_port (it answers its own
# port): smooth weighted roundrobin, chash stability, backup nodes by priority, retries,
# least_conn and ewma. One worker, so the sequences are deterministic.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: roundrobin 2:1 is smooth (a b a a b a), weight 0 never picked
--- apisix_yaml
routes:
  - id: rr
    uri: /server_port
    upstream:
      type: roundrobin
      nodes:
        "127.0.0.1:1980": 2
        "127.0.0.1:1981": 1
        "127.0.0.1:1982": 0
#END
--- request eval
["GET /server_port", "GET /server_port", "GET /server_port", "GET /server_port", "GET /server_port", "GET /server_port"]
--- response_body eval
["1980", "1981", "1980", "1980", "1981", "1980"]



=== TEST 2: chash on a header: the same key always lands on the same node
--- apisix_yaml
routes:
  - id: chash-header
    uri: /server_port
    upstream:
      type: chash
      hash_on: header
      key: X-User
      nodes:
        "127.0.0.1:1980": 1
        "127.0.0.1:1981": 1
        "127.0.0.1:1982": 1
#END
--- request eval
["GET /server_port", "GET /server_port", "GET /server_port", "GET /server_port", "GET /server_port", "GET /server_port"]
--- more_headers eval
["X-User: alice", "X-User: bob", "X-User: alice", "X-User: bob", "X-User: alice", "X-User: bob"]
--- response_body eval
["1980", "1982", "1980", "1982", "1980", "1982"]



=== TEST 3: chash on an argument (hash_on: vars)
--- apisix_yaml
routes:
  - id: chash-arg
    uri: /server_port
    upstream:
      type: chash
      key: arg_id
      nodes:
        "127.0.0.1:1980": 1
        "127.0.0.1:1981": 1
        "127.0.0.1:1982": 1
#END
--- request eval
["GET /server_port?id=2", "GET /server_port?id=4", "GET /server_port?id=0", "GET /server_port?id=4", "GET /server_port?id=2"]
--- response_body eval
["1980", "1981", "1982", "1981", "1980"]



=== TEST 4: a backup node (lower priority) answers while the primary is down
--- apisix_yaml
routes:
  - id: backup
    uri: /server_port
    upstream:
      nodes:
        - host: 127.0.0.1
          port: 1979
          weight: 1
          priority: 0
        - host: 127.0.0.1
          port: 1982
          weight: 1
          priority: -1
#END
--- request eval
["GET /server_port", "GET /server_port", "GET /server_port"]
--- response_body eval
["1982", "1982", "1982"]
--- error_log
(111: Connection refused)



=== TEST 5: backup nodes take no traffic while a primary is up
--- apisix_yaml
routes:
  - id: primary-up
    uri: /server_port
    upstream:
      nodes:
        - host: 127.0.0.1
          port: 1980
          weight: 1
        - host: 127.0.0.1
          port: 1981
          weight: 1
        - host: 127.0.0.1
          port: 1982
          weight: 100
          priority: -1
#END
--- request eval
["GET /server_port", "GET /server_port", "GET /server_port", "GET /server_port"]
--- response_body_like
^198[01]$



=== TEST 6: retries 0: a dead node is a 502, no other node is tried
--- apisix_yaml
routes:
  - id: no-retry
    uri: /server_port
    upstream:
      retries: 0
      nodes:
        - host: 127.0.0.1
          port: 1979
          weight: 1
        - host: 127.0.0.1
          port: 1980
          weight: 1
          priority: -1
#END
--- request
GET /server_port
--- error_code: 502
--- error_log
(111: Connection refused)



=== TEST 7: least_conn spreads sequential requests; ewma answers
--- apisix_yaml
routes:
  - id: least-conn
    uri: /server_port
    upstream:
      type: least_conn
      nodes:
        "127.0.0.1:1980": 1
        "127.0.0.1:1981": 1
  - id: ewma
    uri: /hello
    upstream:
      type: ewma
      nodes:
        "127.0.0.1:1980": 1
        "127.0.0.1:1981": 1
#END
--- request eval
["GET /server_port", "GET /server_port", "GET /hello"]
--- response_body eval
["1980", "1981", "hello world\n"]



=== TEST 8: chash without a key is refused with APISIX's reason
--- apisix_yaml
routes:
  - id: no-key
    uri: /server_port
    upstream:
      type: chash
      nodes:
        "127.0.0.1:1980": 1
  - id: fine
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
missing key
