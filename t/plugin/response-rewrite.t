# response-rewrite: status, headers (legacy map; add/set/remove with $var), body,
# body_base64, vars on response variables, body filters.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: body and filters exclude each other; bad base64; a bad filter regex
--- admin
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"response-rewrite": {"body": "a", "filters": [{"regex": "a", "replace": "b"}]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"response-rewrite": {"body": "not base64!", "body_base64": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"response-rewrite": {"filters": [{"regex": "(", "replace": "b"}]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"response-rewrite": {"status_code": 599}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[400, 400, 400, 400]
--- response_body_like eval
["", "invalid base64 content", "regex \\\\\"\\(\\\\\" validation failed", "status_code"]



=== TEST 2: status, legacy headers, body
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"response-rewrite": {"status_code": 201, "body": "new body\n", "headers": {"X-Server-id": 3, "X-Server-status": "on", "X-Uri": "$uri"}}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201



=== TEST 3: rewritten
--- request
GET /hello
--- error_code: 201
--- response_body
new body
--- response_headers
X-Server-id: 3
X-Server-status: on
X-Uri: /hello



=== TEST 4: add / set / remove, base64 body
--- admin
PUT /apisix/admin/routes/1
{"uri": "/headers", "plugins": {"response-rewrite": {"body": "aGVsbG8K", "body_base64": true, "headers": {"add": ["X-A: 1", "X-A: $remote_addr"], "set": {"X-B": "b"}, "remove": ["X-C"]}}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 5: the upstream's X-C is gone, X-B replaced
--- request
GET /headers?X-C=c&X-B=upstream
--- response_body
hello
--- response_headers
X-B: b
X-C:
--- raw_response_headers_like eval
qr/X-A: 1\r\nX-A: 127.0.0.1\r\n/



=== TEST 6: vars on the response status: only 200s are rewritten
--- admin
PUT /apisix/admin/routes/1
{"uri": "/*", "plugins": {"response-rewrite": {"vars": [["status", "==", 200]], "body": "rewritten\n"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 7: a 200 and a 404
--- request eval
["GET /hello", "GET /nonexistent"]
--- error_code eval
[200, 404]
--- response_body_like eval
["^rewritten\n\$", "404 Not Found"]



=== TEST 8: filters: once and global, with groups and options
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello*", "plugins": {"response-rewrite": {"filters": [{"regex": "(h)ello", "replace": "$1i"}, {"regex": "L", "replace": "*", "scope": "global", "options": "ji"}]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 9: a whole and a chunked body
--- request eval
["GET /hello", "GET /hello_chunked"]
--- response_body eval
["hi wor*d\n", "hi wor*d\n"]
