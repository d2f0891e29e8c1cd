# Plugin metadata in the data plane (/apisix/plugin_metadata/<name>): limit-count's header
# names, cors' allow_origins_by_metadata, prometheus' metadata schema; a metadata change
# applies without touching the routes (prometheus' labels: prometheus.t).
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: limit-count: metadata renames the quota headers
--- admin
PUT /apisix/admin/plugin_metadata/limit-count
{"limit_header": "X-Limit-Quota", "remaining_header": "X-Limit-Left"}
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"limit-count": {"count": 10, "time_window": 60}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[201, 201]
--- response_body_json_subset eval
['{"value": {"limit_header": "X-Limit-Quota", "reset_header": "X-RateLimit-Reset"}}', '{"value": {"uri": "/hello"}}']



=== TEST 2: the renamed headers (the default reset name kept)
--- request
GET /hello
--- response_headers
X-Limit-Quota: 10
X-Limit-Left: 9
!X-RateLimit-Limit
!X-RateLimit-Remaining
--- response_headers_like
X-RateLimit-Reset: \d+



=== TEST 3: the metadata changes, the route does not
--- admin
PUT /apisix/admin/plugin_metadata/limit-count
{"limit_header": "X-Other-Limit"}
--- error_code: 200



=== TEST 4: the new names apply, the count goes on
--- request
GET /hello
--- response_headers
X-Other-Limit: 10
X-RateLimit-Remaining: 8
!X-Limit-Quota



=== TEST 5: metadata deleted: APISIX's names again
--- admin
DELETE /apisix/admin/plugin_metadata/limit-count
--- error_code: 200



=== TEST 6: default names
--- request
GET /hello
--- response_headers
X-RateLimit-Limit: 10
X-RateLimit-Remaining: 7



=== TEST 7: cors: allow_origins_by_metadata names origin lists of the metadata
--- admin
PUT /apisix/admin/plugin_metadata/cors
{"allow_origins": {"company": "https://a.com,https://b.com", "single": "https://c.com"}}
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"cors": {"allow_origins_by_metadata": ["company"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[201, 200]



=== TEST 8: a listed origin is echoed, another gets no CORS headers
--- request eval
["GET /hello", "GET /hello"]
--- more_headers eval
["Origin: https://b.com", "Origin: https://c.com"]
--- response_headers eval
["Access-Control-Allow-Origin: https://b.com\nAccess-Control-Allow-Methods: *\n!Vary", "!Access-Control-Allow-Origin"]



=== TEST 9: the metadata's lists change: c.com allowed now, b.com not
--- admin
PUT /apisix/admin/plugin_metadata/cors
{"allow_origins": {"company": "https://c.com"}}
--- error_code: 200



=== TEST 10: applied without touching the route
--- request eval
["GET /hello", "GET /hello"]
--- more_headers eval
["Origin: https://c.com", "Origin: https://b.com"]
--- response_headers eval
["Access-Control-Allow-Origin: https://c.com", "!Access-Control-Allow-Origin"]



=== TEST 11: with allow_origins as well, either one allows
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"cors": {"allow_origins": "https://d.com", "allow_origins_by_metadata": ["company"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 12: metadata origin, then allow_origins' one, then neither
--- request eval
["GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["Origin: https://c.com", "Origin: https://d.com", "Origin: https://e.com"]
--- response_headers eval
["Access-Control-Allow-Origin: https://c.com", "Access-Control-Allow-Origin: https://d.com", "!Access-Control-Allow-Origin"]



=== TEST 13: metadata schemas are checked
--- admin
PUT /apisix/admin/plugin_metadata/cors
{"allow_origins": {"company": "not an origin"}}
PUT /apisix/admin/plugin_metadata/prometheus
{"disabled_labels": {"http_status": ["code"]}}
PUT /apisix/admin/plugin_metadata/limit-count
{"limit_header": 1}
--- error_code eval
[400, 400, 400]
