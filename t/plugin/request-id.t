# request-id: an id to the upstream and in the response; incoming ids kept; algorithms.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: defaults
--- admin
PUT /apisix/admin/routes/1
{"uri": "/echo", "plugins": {"request-id": {}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"request-id": {"header_name": "X-Request-Id", "include_in_response": true, "algorithm": "uuid"}}}}



=== TEST 2: a uuid v4, sent upstream (the mock echoes request headers) and in the response
--- request
GET /echo
--- response_headers_like
X-Request-Id: [0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}



=== TEST 3: an incoming id is kept
--- request
GET /echo
--- more_headers
X-Request-Id: 123
--- response_headers
X-Request-Id: 123



=== TEST 4: nanoid, a custom header, not in the response
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"request-id": {"algorithm": "nanoid", "header_name": "X-Trace", "include_in_response": false}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/2
{"uri": "/echo", "plugins": {"request-id": {"algorithm": "nanoid"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/3
{"uri": "/headers", "plugins": {"request-id": {"algorithm": "range_id", "range_id": {"length": 8, "char_set": "abcdef"}}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/4
{"uri": "/hello1", "plugins": {"request-id": {"algorithm": "uuidv7"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/5
{"uri": "/hello_chunked", "plugins": {"request-id": {"algorithm": "ksuid"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[200, 201, 201, 201, 201]



=== TEST 5: ids of each algorithm
--- request eval
["GET /hello", "GET /echo", "GET /headers", "GET /hello1", "GET /hello_chunked"]
--- response_headers_like eval
["X-Trace: ^\$", "X-Request-Id: [A-Za-z0-9_-]{21}", "X-Request-Id: [a-f]{8}", "X-Request-Id: [0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", "X-Request-Id: [0-9A-Za-z]{27}"]
