# csrf: the token cookie on every response; unsafe methods need the header equal to the
# cookie and a valid signature.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: key is required
--- admin
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"csrf": {}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_like
property \\"key\\" is required



=== TEST 2: a route with csrf
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"csrf": {"key": "userkey", "expires": 1000000000}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"csrf": {"name": "apisix-csrf-token", "expires": 1000000000}}}}



=== TEST 3: GET passes and gets the cookie
--- request
GET /hello
--- response_body
hello world
--- response_headers_like
Set-Cookie: apisix-csrf-token=[A-Za-z0-9+/=]+;path=/;SameSite=Lax;Expires=[A-Z][a-z]{2}, \d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d GMT



=== TEST 4: POST without the header, without the cookie, with a mismatch
--- request eval
["POST /hello", "POST /hello", "POST /hello"]
--- more_headers eval
["", "apisix-csrf-token: abc", "apisix-csrf-token: abc\nCookie: apisix-csrf-token=abd"]
--- error_code eval
[401, 401, 401]
--- response_body eval
["{\"error_msg\":\"no csrf token in headers\"}\n", "{\"error_msg\":\"no csrf cookie\"}\n", "{\"error_msg\":\"csrf token mismatch\"}\n"]



=== TEST 5: a token whose signature does not verify
--- request
POST /hello
--- more_headers
apisix-csrf-token: eyJyYW5kb20iOjAuNDIsImV4cGlyZXMiOjE2NTk2MDk2MDAsInNpZ24iOiJiYWQifQ==
Cookie: apisix-csrf-token=eyJyYW5kb20iOjAuNDIsImV4cGlyZXMiOjE2NTk2MDk2MDAsInNpZ24iOiJiYWQifQ==
--- error_code: 401
--- response_body
{"error_msg":"Failed to verify the csrf token signature"}
--- error_log
Invalid signatures



=== TEST 6: a token APISIX signed with the same key (random 0.42, expires 1659609600) passes
--- request
POST /hello
--- more_headers
apisix-csrf-token: eyJyYW5kb20iOjAuNDIsImV4cGlyZXMiOjE2NTk2MDk2MDAsInNpZ24iOiIyZTRmNTgyYjlmYmVhOWUyZjJkMjA4YzE3NmE1MjYzOTM0MmZlMmJkMjI2MThjNjQ4OTI1MjBjZmQ4YzIxYzU0In0=
Cookie: apisix-csrf-token=eyJyYW5kb20iOjAuNDIsImV4cGlyZXMiOjE2NTk2MDk2MDAsInNpZ24iOiIyZTRmNTgyYjlmYmVhOWUyZjJkMjA4YzE3NmE1MjYzOTM0MmZlMmJkMjI2MThjNjQ4OTI1MjBjZmQ4YzIxYzU0In0=
--- response_body
hello world
