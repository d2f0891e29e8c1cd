# serverless-pre-function / serverless-post-function: Python functions in a chosen phase.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: functions required; a syntax error; no function defined; a bad phase
--- admin
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"serverless-pre-function": {}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"serverless-pre-function": {"functions": ["def f(conf, ctx)\n  return 1"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"serverless-post-function": {"functions": ["x = 1"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"serverless-pre-function": {"phase": "balancer", "functions": ["def f(conf, ctx):\n  pass"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[400, 400, 400, 400]
--- response_body_like eval
["functions", "failed to compile: ", "only accept Python function", "phase"]



=== TEST 2: pre (rewrite) ends the request; post (header_filter) adds a header
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"serverless-pre-function": {"phase": "rewrite", "functions": ["def f(conf, ctx):\n    if ctx.var('arg_deny'):\n        return 403, {'message': 'denied by ' + ctx.var('arg_deny')}\n    ctx.set_header('X-Pre', 'yes')"]}, "serverless-post-function": {"phase": "header_filter", "functions": ["def f(conf, ctx):\n    ctx.set_response_header('X-Post', ctx.status)", "def g(conf, ctx):\n    ctx.set_response_header('X-Second', 'also')"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"serverless-pre-function": {"phase": "rewrite"}}}}



=== TEST 3: passed, then ended
--- request eval
["GET /hello", "GET /hello?deny=me"]
--- error_code eval
[200, 403]
--- response_body eval
["hello world\n", "{\"message\":\"denied by me\"}\n"]
--- response_headers eval
["X-Post: 200\nX-Second: also", "X-Post: 403"]



=== TEST 4: the request header reached the upstream (the mock echoes it)
--- admin
PUT /apisix/admin/routes/1
{"uri": "/echo", "plugins": {"serverless-pre-function": {"functions": ["def f(conf, ctx):\n    ctx.set_header('X-Pre', 'access')"]}, "serverless-post-function": {"phase": "body_filter", "functions": ["def f(conf, ctx, chunk, eof):\n    return chunk.upper()"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 5: access by default; body_filter changes the body
--- request
POST /echo
abc
--- response_body chomp
ABC
--- response_headers
X-Pre: access



=== TEST 6: log phase runs after the response
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"serverless-post-function": {"phase": "log", "functions": ["from gateway.core.log import log as _l\ndef f(conf, ctx):\n    _l.warning('serverless log phase: status %s uri %s', ctx.status, ctx.uri)"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 7: logged
--- request
GET /hello
--- error_log
serverless log phase: status 200 uri /hello
