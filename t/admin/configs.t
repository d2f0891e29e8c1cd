# API-driven standalone mode (role traditional, config_provider yaml): the whole config is
# one document, PUT to /apisix/admin/configs with an X-Digest, held in memory.

__DATA__

=== TEST 1: empty at start: conf versions 0, no digest
--- extra_yaml_config
deployment:
  role_traditional:
    config_provider: yaml
--- admin
GET /apisix/admin/configs
--- response_body_json_subset
{"routes_conf_version": 0, "upstreams_conf_version": 0}



=== TEST 2: the digest header is required
--- extra_yaml_config
deployment:
  role_traditional:
    config_provider: yaml
--- admin
PUT /apisix/admin/configs
{"routes": []}
--- error_code: 400
--- response_body_json
{"error_msg": "missing digest header"}



=== TEST 3: a document: 202, served at once
--- extra_yaml_config
deployment:
  role_traditional:
    config_provider: yaml
--- admin
PUT /apisix/admin/configs
{"routes": [{"id": "r1", "uri": "/hello", "upstream_id": "u1"}],
 "upstreams": [{"id": "u1", "nodes": {"127.0.0.1:1980": 1}}]}
--- more_headers
X-Digest: d1
--- error_code: 202
--- response_headers
X-Digest: d1



=== TEST 4: the route serves
--- extra_yaml_config
deployment:
  role_traditional:
    config_provider: yaml
--- request
GET /hello
--- response_body
hello world



=== TEST 5: GET returns the document with its versions and metadata
--- extra_yaml_config
deployment:
  role_traditional:
    config_provider: yaml
--- admin
GET /apisix/admin/configs
--- response_body_json_subset
{"routes_conf_version": 1, "upstreams_conf_version": 1, "X-Digest": "d1",
 "routes": [{"id": "r1", "uri": "/hello"}]}
--- response_headers
X-Digest: d1



=== TEST 5b: HEAD: the metadata only
--- extra_yaml_config
deployment:
  role_traditional:
    config_provider: yaml
--- admin
HEAD /apisix/admin/configs
--- response_headers
X-Digest: d1
--- response_headers_like
X-Last-Modified: \d+



=== TEST 6: the same digest changes nothing: 204
--- extra_yaml_config
deployment:
  role_traditional:
    config_provider: yaml
--- admin
PUT /apisix/admin/configs
{"routes": []}
--- more_headers
X-Digest: d1
--- error_code: 204



=== TEST 7: a lower conf version is refused
--- extra_yaml_config
deployment:
  role_traditional:
    config_provider: yaml
--- admin
PUT /apisix/admin/configs
{"routes_conf_version": 0, "routes": []}
--- more_headers
X-Digest: d2
--- error_code: 400
--- response_body_json
{"error_msg": "routes_conf_version must be greater than or equal to (1)"}



=== TEST 8: a bad item names its kind and index
--- extra_yaml_config
deployment:
  role_traditional:
    config_provider: yaml
--- admin
PUT /apisix/admin/configs
{"routes": [{"id": "r1", "uri": "/a", "upstream_id": "u1"}, {"id": "r2", "uri": 2}]}
--- more_headers
X-Digest: d3
--- error_code: 400
--- response_body_like
^\{"error_msg":"invalid routes at index 1, err: invalid configuration: .*"\}$



=== TEST 9: duplicate ids are refused
--- extra_yaml_config
deployment:
  role_traditional:
    config_provider: yaml
--- admin
PUT /apisix/admin/configs
{"routes": [{"id": "r1", "uri": "/a", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}, {"id": "r1", "uri": "/b", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}]}
--- more_headers
X-Digest: d4
--- error_code: 400
--- response_body_json
{"error_msg": "found duplicate id r1 in routes"}



=== TEST 10: an equal conf version keeps the old items; a new one replaces them (YAML body)
--- extra_yaml_config
deployment:
  role_traditional:
    config_provider: yaml
--- admin
PUT /apisix/admin/configs
routes_conf_version: 5
routes:
  - id: r9
    uri: /status
    upstream:
      nodes:
        "127.0.0.1:1980": 1
upstreams_conf_version: 1
--- more_headers
X-Digest: d5
Content-Type: application/yaml
--- error_code: 202



=== TEST 11: the new route serves, the old one is gone
--- extra_yaml_config
deployment:
  role_traditional:
    config_provider: yaml
--- request eval
["GET /status", "GET /hello"]
--- error_code eval
[200, 404]



=== TEST 12: resources cannot be changed one by one in this mode
--- extra_yaml_config
deployment:
  role_traditional:
    config_provider: yaml
--- admin
PUT /apisix/admin/routes/1
{"uri": "/x", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_like
API-driven standalone mode
