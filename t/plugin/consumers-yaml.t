# Consumers and consumer groups from conf/apisix.yaml (standalone data plane): keys stored
# in clear, groups merged, a consumer whose group is missing answers 503.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: a consumer, a group, and a route with key-auth
--- apisix_yaml
consumer_groups:
  - id: gold
    plugins:
      echo:
        before_body: "gold\n"
consumers:
  - username: jack
    group_id: gold
    plugins:
      key-auth:
        key: yaml-key
  - username: lost
    group_id: nowhere
    plugins:
      key-auth:
        key: lost-key
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
["GET /hello?apikey=yaml-key", "GET /hello", "GET /hello?apikey=lost-key"]
--- error_code eval
[200, 401, 503]
--- response_body_like eval
["^gold\nhello world\n\$", "Missing API key", "503"]
--- error_log
failed to fetch consumer group config by id: nowhere
