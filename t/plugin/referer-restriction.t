# referer-restriction: whitelist / blacklist of Referer hosts (with *. wildcards),
# bypass_missing, message.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: whitelist xor blacklist, host patterns
--- admin
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"referer-restriction": {"whitelist": ["a.com"], "blacklist": ["b.com"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"referer-restriction": {"whitelist": ["a b"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[400, 400]



=== TEST 2: a whitelist with a wildcard
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"referer-restriction": {"whitelist": ["*.xx.com", "yy.com"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"referer-restriction": {"bypass_missing": false, "message": "Your referer host is not allowed"}}}}



=== TEST 3: allowed hosts, a refused one, a missing and an unparsable Referer
--- request eval
["GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["Referer: http://www.xx.com/a", "Referer: https://yy.com:8443/", "Referer: http://xx.com", "Referer: http://www.yy.com/", "", "Referer: www.yy.com"]
--- error_code eval
[200, 200, 403, 403, 403, 403]
--- response_body eval
["hello world\n", "hello world\n", "{\"message\":\"Your referer host is not allowed\"}\n", "{\"message\":\"Your referer host is not allowed\"}\n", "{\"message\":\"Your referer host is not allowed\"}\n", "{\"message\":\"Your referer host is not allowed\"}\n"]



=== TEST 4: a blacklist, bypass_missing and a message
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"referer-restriction": {"blacklist": ["*.xx.com"], "bypass_missing": true, "message": "Your host is forbidden"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 5: refused, allowed, missing (bypassed)
--- request eval
["GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["Referer: http://www.xx.com/", "Referer: http://yy.com/", ""]
--- error_code eval
[403, 200, 200]
--- response_body eval
["{\"message\":\"Your host is forbidden\"}\n", "hello world\n", "hello world\n"]
