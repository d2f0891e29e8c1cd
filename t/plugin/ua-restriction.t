# ua-restriction: allowlist / denylist regexes on User-Agent, bypass_missing, message.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: allowlist xor denylist; a bad regex
--- admin
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"ua-restriction": {"allowlist": ["a"], "denylist": ["b"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"ua-restriction": {"denylist": ["(a"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[400, 400]



=== TEST 2: a denylist
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"ua-restriction": {"denylist": ["my-bot1", "(Baiduspider)/(\\d+)\\.(\\d+)"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"ua-restriction": {"bypass_missing": false, "message": "Not allowed"}}}}



=== TEST 3: denied, allowed, missing
--- request eval
["GET /hello", "GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["User-Agent: my-bot1", "User-Agent: Baiduspider/3.0", "User-Agent: curl/8", ""]
--- error_code eval
[403, 403, 200, 403]
--- response_body eval
["{\"message\":\"Not allowed\"}\n", "{\"message\":\"Not allowed\"}\n", "hello world\n", "{\"message\":\"Not allowed\"}\n"]



=== TEST 4: an allowlist with bypass_missing and a message
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"ua-restriction": {"allowlist": ["^Mozilla"], "bypass_missing": true, "message": "Do you want to do something bad?"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 5: allowed, denied, missing (bypassed)
--- request eval
["GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["User-Agent: Mozilla/5.0", "User-Agent: curl/8", ""]
--- error_code eval
[200, 403, 200]
--- response_body eval
["hello world\n", "{\"message\":\"Do you want to do something bad?\"}\n", "hello world\n"]
