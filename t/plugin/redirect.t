# redirect: uri templates, regex_uri, ret_code, http_to_https (ports as APISIX),
# append_query_string, encode_uri.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: exactly one of uri / regex_uri / http_to_https; http_to_https with append_query_string
--- admin
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"redirect": {"uri": "/a", "http_to_https": true}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"redirect": {"http_to_https": true, "append_query_string": true}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"redirect": {"regex_uri": ["(", "/a"]}}}
--- error_code eval
[400, 400, 400]
--- response_body_like eval
["", "only one of `http_to_https` and `append_query_string` can be configured.", "invalid regex_uri"]



=== TEST 2: uri with variables, default 302
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"redirect": {"uri": "/test/add/${uri}/\\$\\$/$arg_a"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"redirect": {"ret_code": 302, "encode_uri": false, "append_query_string": false}}}}



=== TEST 3: redirected
--- request
GET /hello?a=1
--- error_code: 302
--- response_headers
Location: /test/add//hello/$$/1



=== TEST 4: regex_uri, ret_code, append_query_string
--- admin
PUT /apisix/admin/routes/1
{"uri": "/test/*", "plugins": {"redirect": {"regex_uri": ["^/test/(.*)/(.*)", "/$2/$1"], "ret_code": 301, "append_query_string": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 5: matched (query appended); not matched: proxied
--- request eval
["GET /test/a/b?x=1", "GET /test/hello"]
--- error_code eval
[301, 404]
--- response_headers eval
["Location: /b/a?x=1", "!Location"]



=== TEST 6: encode_uri
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"redirect": {"uri": "/hello world/<a>?x= y", "encode_uri": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 7: the path is encoded, the query left alone
--- request
GET /hello
--- error_code: 302
--- response_headers
Location: /hello%20world/%3Ca%3E?x= y



=== TEST 8: http_to_https: the https port of apisix.ssl.listen (9443)
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "host": "foo.com", "plugins": {"redirect": {"http_to_https": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 9: 301 for GET, 308 for POST; no redirect when already https (X-Forwarded-Proto)
--- request eval
["GET /hello?a=1", "POST /hello", "GET /hello"]
--- more_headers eval
["Host: foo.com", "Host: foo.com", "Host: foo.com\nX-Forwarded-Proto: https"]
--- error_code eval
[301, 308, 200]
--- response_headers eval
["Location: https://foo.com:9443/hello?a=1", "Location: https://foo.com:9443/hello", "!Location"]



=== TEST 10: plugin_attr.redirect.https_port 443: no port in the Location
--- extra_yaml_config
plugin_attr:
  redirect:
    https_port: 443
--- request
GET /hello
--- more_headers
Host: foo.com
--- error_code: 301
--- response_headers
Location: https://foo.com/hello



=== TEST 11: plugin_attr.redirect.https_port 8443
--- extra_yaml_config
plugin_attr:
  redirect:
    https_port: 8443
--- request
GET /hello
--- more_headers
Host: foo.com
--- error_code: 301
--- response_headers
Location: https://foo.com:8443/hello
