# cors: origins (*, **, one, a list, regexes), methods, headers, expose, max_age,
# credentials (and the config errors with '*'), preflight answered without the upstream.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: '*' with allow_credential is refused; a bad origin; a bad regex
--- admin
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"cors": {"allow_credential": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"cors": {"allow_origins": "notanorigin"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"cors": {"allow_origins_by_regex": ["("]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[400, 400, 400]
--- response_body_like eval
["you can not set '\\*' for other option when 'allow_credential' is true", "allow_origins", "."]



=== TEST 2: defaults
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"cors": {}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"cors": {"allow_origins": "*", "allow_methods": "*", "allow_headers": "*", "max_age": 5, "allow_credential": false}}}}



=== TEST 3: '*': every origin, no Vary, no Expose-Headers
--- request
GET /hello
--- more_headers
Origin: https://sub.domain.com
--- response_body
hello world
--- response_headers
Access-Control-Allow-Origin: *
Access-Control-Allow-Methods: *
Access-Control-Allow-Headers: *
Access-Control-Max-Age: 5
!Access-Control-Expose-Headers
!Access-Control-Allow-Credentials
!Vary



=== TEST 4: a preflight is answered 200 by the gateway
--- request
OPTIONS /hello
--- more_headers
Origin: https://sub.domain.com
--- response_body
--- response_headers
Access-Control-Allow-Origin: *
Access-Control-Max-Age: 5



=== TEST 5: a list of origins with credentials and explicit options
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"cors": {"allow_origins": "http://sub.domain.com,http://sub2.domain.com", "allow_methods": "GET,POST", "allow_headers": "headr1,headr2", "expose_headers": "ex-headr1,ex-headr2", "max_age": 50, "allow_credential": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 6: an origin of the list
--- request
GET /hello
--- more_headers
Origin: http://sub2.domain.com
--- response_headers
Access-Control-Allow-Origin: http://sub2.domain.com
Access-Control-Allow-Methods: GET,POST
Access-Control-Allow-Headers: headr1,headr2
Access-Control-Expose-Headers: ex-headr1,ex-headr2
Access-Control-Max-Age: 50
Access-Control-Allow-Credentials: true
Vary: Origin



=== TEST 7: an origin not in the list: no CORS headers, Vary still
--- request
GET /hello
--- more_headers
Origin: http://other.com
--- response_headers
!Access-Control-Allow-Origin
!Access-Control-Allow-Methods
Vary: Origin



=== TEST 8: '**' everywhere: the request's origin, every method, its requested headers
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"cors": {"allow_origins": "**", "allow_methods": "**", "allow_headers": "**", "expose_headers": "ex-headr1", "allow_credential": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 9: echoed
--- request
OPTIONS /hello
--- more_headers
Origin: https://sub.domain.com
Access-Control-Request-Headers: X-Foo, X-Bar
--- response_headers
Access-Control-Allow-Origin: https://sub.domain.com
Access-Control-Allow-Methods: GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS,CONNECT,TRACE
Access-Control-Allow-Headers: X-Foo, X-Bar
Access-Control-Allow-Credentials: true
Vary: Origin



=== TEST 10: allow_origins_by_regex (and timing_allow_origins)
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"cors": {"allow_origins_by_regex": [".*\\.test\\.com$"], "timing_allow_origins": "http://a.test.com"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 11: a matching origin, then one that does not match
--- request eval
["GET /hello", "GET /hello"]
--- more_headers eval
["Origin: http://a.test.com", "Origin: http://a.test.org"]
--- response_headers eval
["Access-Control-Allow-Origin: http://a.test.com\nTiming-Allow-Origin: http://a.test.com\nAccess-Control-Allow-Methods: *", "!Access-Control-Allow-Origin\n!Timing-Allow-Origin"]



=== TEST 12: a single configured origin is sent as configured
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"cors": {"allow_origins": "http://only.com"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 13: whatever the request's origin
--- request
GET /hello
--- more_headers
Origin: http://other.com
--- response_headers
Access-Control-Allow-Origin: http://only.com
Vary: Origin
