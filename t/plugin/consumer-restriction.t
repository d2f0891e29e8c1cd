# consumer-restriction: whitelist, blacklist and allowed_by_methods on consumer names,
# consumer groups, route ids and service ids; the 401 when there is no value; rejected_code
# and rejected_msg.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: consumers jack (in group vip) and rose
--- admin
PUT /apisix/admin/consumer_groups/vip
{"plugins": {}}
PUT /apisix/admin/consumers
{"username": "jack", "group_id": "vip", "plugins": {"key-auth": {"key": "jack-key"}}}
PUT /apisix/admin/consumers
{"username": "rose", "plugins": {"key-auth": {"key": "rose-key"}}}
--- error_code eval
[201, 201, 201]



=== TEST 2: at least one of whitelist, blacklist, allowed_by_methods
--- admin
PUT /apisix/admin/routes/1
{
    "uri": "/hello",
    "plugins": {"key-auth": {}, "consumer-restriction": {"type": "consumer_name"}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 400
--- response_body_like
failed to check the configuration of plugin consumer-restriction err



=== TEST 3: a whitelist of consumer names
--- admin
PUT /apisix/admin/routes/1
{
    "uri": "/hello",
    "host": "white.test",
    "plugins": {"key-auth": {}, "consumer-restriction": {"whitelist": ["jack"]}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"consumer-restriction": {"type": "consumer_name", "rejected_code": 403}}}}



=== TEST 4: jack passes, rose is refused
--- request eval
["GET /hello", "GET /hello"]
--- more_headers eval
["Host: white.test\napikey: jack-key", "Host: white.test\napikey: rose-key"]
--- error_code eval
[200, 403]
--- response_body eval
["hello world\n", "{\"message\":\"The consumer_name is forbidden.\"}\n"]



=== TEST 5: a blacklist with rejected_code and rejected_msg
--- admin
PUT /apisix/admin/routes/2
{
    "uri": "/hello",
    "host": "black.test",
    "plugins": {"key-auth": {}, "consumer-restriction": {"blacklist": ["jack"], "rejected_code": 429, "rejected_msg": "request is forbidden"}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 201



=== TEST 6: jack is refused, rose passes
--- request eval
["GET /hello", "GET /hello"]
--- more_headers eval
["Host: black.test\napikey: jack-key", "Host: black.test\napikey: rose-key"]
--- error_code eval
[429, 200]
--- response_body eval
["{\"message\":\"request is forbidden\"}\n", "hello world\n"]



=== TEST 7: allowed_by_methods
--- admin
PUT /apisix/admin/routes/3
{
    "uri": "/hello",
    "host": "methods.test",
    "plugins": {"key-auth": {}, "consumer-restriction": {"allowed_by_methods": [{"user": "jack", "methods": ["POST"]}]}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 201



=== TEST 8: jack may POST but not GET; rose (not listed) may GET
--- request eval
["GET /hello", "POST /hello", "GET /hello"]
--- more_headers eval
["Host: methods.test\napikey: jack-key", "Host: methods.test\napikey: jack-key", "Host: methods.test\napikey: rose-key"]
--- error_code eval
[403, 200, 200]



=== TEST 9: no auth plugin, so no consumer
--- admin
PUT /apisix/admin/routes/4
{
    "uri": "/hello",
    "host": "noauth.test",
    "plugins": {"consumer-restriction": {"whitelist": ["jack"]}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 201



=== TEST 10: the value is missing: 401
--- request
GET /hello
--- more_headers
Host: noauth.test
--- error_code: 401
--- response_body
{"message":"The request is rejected, please check the consumer_name for this request"}



=== TEST 11: by consumer group
--- admin
PUT /apisix/admin/routes/5
{
    "uri": "/hello",
    "host": "group.test",
    "plugins": {"key-auth": {}, "consumer-restriction": {"type": "consumer_group_id", "whitelist": ["vip"]}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 201



=== TEST 12: jack is in vip; rose has no group
--- request eval
["GET /hello", "GET /hello"]
--- more_headers eval
["Host: group.test\napikey: jack-key", "Host: group.test\napikey: rose-key"]
--- error_code eval
[200, 401]
--- response_body eval
["hello world\n", "{\"message\":\"The request is rejected, please check the consumer_group_id for this request\"}\n"]



=== TEST 13: by route id, in a consumer's plugins (merged over the route)
--- admin
PUT /apisix/admin/consumers
{"username": "tim", "plugins": {"key-auth": {"key": "tim-key"}, "consumer-restriction": {"type": "route_id", "whitelist": ["6"]}}}
PUT /apisix/admin/routes/6
{
    "uri": "/hello",
    "host": "r6.test",
    "plugins": {"key-auth": {}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
PUT /apisix/admin/routes/7
{
    "uri": "/hello",
    "host": "r7.test",
    "plugins": {"key-auth": {}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code eval
[201, 201, 201]



=== TEST 14: tim may use route 6 only; jack is not restricted
--- request eval
["GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["Host: r6.test\napikey: tim-key", "Host: r7.test\napikey: tim-key", "Host: r7.test\napikey: jack-key"]
--- error_code eval
[200, 403, 200]
--- response_body eval
["hello world\n", "{\"message\":\"The route_id is forbidden.\"}\n", "hello world\n"]



=== TEST 15: by service id
--- admin
PUT /apisix/admin/services/s1
{"plugins": {"key-auth": {}, "consumer-restriction": {"type": "service_id", "blacklist": ["s2"]}}, "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/services/s2
{"plugins": {"key-auth": {}, "consumer-restriction": {"type": "service_id", "blacklist": ["s2"]}}, "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/8
{"uri": "/hello", "host": "s1.test", "service_id": "s1"}
PUT /apisix/admin/routes/9
{"uri": "/hello", "host": "s2.test", "service_id": "s2"}
--- error_code eval
[201, 201, 201, 201]



=== TEST 16: service s2 is blacklisted
--- request eval
["GET /hello", "GET /hello"]
--- more_headers eval
["Host: s1.test\napikey: jack-key", "Host: s2.test\napikey: jack-key"]
--- error_code eval
[200, 403]
--- response_body eval
["hello world\n", "{\"message\":\"The service_id is forbidden.\"}\n"]
