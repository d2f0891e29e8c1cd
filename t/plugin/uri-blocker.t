# uri-blocker: block_rules regexes on $request_uri, rejected_code, rejected_msg,
# case_insensitive.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: block_rules required; a bad regex
--- admin
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"uri-blocker": {}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"uri-blocker": {"block_rules": ["^a("]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[400, 400]



=== TEST 2: rules, default code, no message
--- admin
PUT /apisix/admin/routes/1
{"uri": "/*", "plugins": {"uri-blocker": {"block_rules": ["root.exe", "root.m+"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"uri-blocker": {"rejected_code": 403, "case_insensitive": false}}}}



=== TEST 3: blocked (path, query), passed (case differs)
--- request eval
["GET /root.exe", "GET /hello?x=rootmmm", "GET /hello", "GET /ROOT.EXE"]
--- error_code eval
[403, 403, 200, 404]
--- response_body_like eval
["403 Forbidden", "403 Forbidden", "hello world", ""]



=== TEST 4: rejected_code, rejected_msg, case_insensitive
--- admin
PUT /apisix/admin/routes/1
{"uri": "/*", "plugins": {"uri-blocker": {"block_rules": ["root.exe"], "rejected_code": 410, "rejected_msg": "access is not allowed", "case_insensitive": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 5: blocked whatever the case, with the message
--- request eval
["GET /ROOT.exe", "GET /hello"]
--- error_code eval
[410, 200]
--- response_body eval
["{\"error_msg\":\"access is not allowed\"}\n", "hello world\n"]
