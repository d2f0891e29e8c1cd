# Admin API: schemas and validation without storing anything.

__DATA__

=== TEST 1: the route schema
--- admin
GET /apisix/admin/schema/route
--- response_body_json_subset
{"type": "object"}
--- response_body_like
"uri"



=== TEST 2: an unknown schema
--- admin
GET /apisix/admin/schema/nothing
--- error_code: 400
--- response_body_json
{"error_msg": "not found schema: nothing"}



=== TEST 3: validate a good route: 200, empty body, nothing stored
--- admin
POST /apisix/admin/schema/validate/routes
{"uri": "/v", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
GET /apisix/admin/routes
--- error_code eval
[200, 200]
--- response_body eval
["", '{"list":[],"total":0}']



=== TEST 4: validate a bad route
--- admin
POST /apisix/admin/schema/validate/routes
{"uri": 1}
--- error_code: 400
--- response_body_like
^\{"error_msg":"invalid configuration: .*"\}$



=== TEST 5: validate an unknown resource type
--- admin
POST /apisix/admin/schema/validate/nothing
{}
--- error_code: 404
--- response_body_json
{"error_msg": "Unsupported resource type: nothing"}



=== TEST 6: configs/validate: a good declarative config
--- admin
POST /apisix/admin/configs/validate
{"routes": [{"id": "r1", "uri": "/a", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}],
 "upstreams": [{"id": "u1", "nodes": {"127.0.0.1:1980": 1}}]}
--- response_body_json
{}



=== TEST 7: configs/validate: every error, with its resource and index
--- admin
POST /apisix/admin/configs/validate
{"routes": [{"id": "r1", "uri": "/a", "upstream": {"nodes": {"127.0.0.1:1980": 1}}},
            {"id": "r1", "uri": "/b", "upstream": {"nodes": {"127.0.0.1:1980": 1}}},
            {"id": "r3", "uri": 3}],
 "upstreams": [{"id": "u1", "type": "chash", "nodes": {"127.0.0.1:1980": 1}}]}
--- error_code: 400
--- response_body_json_subset
{"error_msg": "Configuration validation failed",
 "errors": [{"resource_type": "routes", "resource_id": "r1", "index": 1},
            {"resource_type": "routes", "resource_id": "r3", "index": 2},
            {"resource_type": "upstreams", "resource_id": "u1", "index": 0, "error": "missing key"}]}



=== TEST 8: configs/validate: an empty body
--- admin
POST /apisix/admin/configs/validate
--- error_code: 400
--- response_body_json
{"error_msg": "invalid request body: empty request body"}



=== TEST 9: configs/validate: YAML
--- admin
POST /apisix/admin/configs/validate
routes:
  - id: r1
    uri: /a
    upstream:
      nodes:
        "127.0.0.1:1980": 1
--- more_headers
Content-Type: application/yaml
--- response_body_json
{}
