# brotli: Content-Encoding br by type, length, Accept-Encoding, HTTP version; Vary; ETag.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: comp_level 0..11, mode 0..2, lgwin/lgblock enums, types array or "*"
--- extra_yaml_config
plugins:
  - brotli
--- admin
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"brotli": {"comp_level": 12}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"brotli": {"mode": 3}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"brotli": {"lgwin": 9}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"brotli": {"lgblock": 15}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"brotli": {"types": "text/html"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[400, 400, 400, 400, 400]



=== TEST 2: a route with brotli: APISIX's defaults filled in
--- extra_yaml_config
plugins:
  - brotli
--- admin
PUT /apisix/admin/routes/1
{"uri": "/echo", "plugins": {"brotli": {"types": ["text/html", "application/json"], "min_length": 30, "vary": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"brotli": {"min_length": 30, "comp_level": 6, "mode": 0, "lgwin": 19, "lgblock": 0, "http_version": 1.1}}}}



=== TEST 3: compressed: right type, long enough, br accepted; the body decodes back
--- extra_yaml_config
plugins:
  - brotli
--- exec
body=$(printf 'a%.0s' $(seq 1 100))
curl -s -D h.txt -o b.br -H 'Accept-Encoding: gzip, br' -H 'Content-Type: text/html; charset=utf-8' --data "$body" http://127.0.0.1:1984/echo
grep -i -E '^(content-encoding|vary):' h.txt | tr -d '\r' | sort
$PYTHON -c 'import brotli, sys; print(len(brotli.decompress(open("b.br", "rb").read())))'
--- response_body
Content-Encoding: br
Vary: Accept-Encoding
100



=== TEST 4: not compressed: too short, other type, not accepted, q=0, HTTP/1.0, encoded
--- extra_yaml_config
plugins:
  - brotli
--- exec
long=$(printf 'a%.0s' $(seq 1 100))
req() { curl -s -D - -o /dev/null "$@" http://127.0.0.1:1984/echo | grep -ci '^content-encoding: br'; }
req -H 'Accept-Encoding: br' -H 'Content-Type: text/html' --data "short"
req -H 'Accept-Encoding: br' -H 'Content-Type: text/plain' --data "$long"
req -H 'Content-Type: text/html' --data "$long"
req -H 'Accept-Encoding: gzip' -H 'Content-Type: text/html' --data "$long"
req -H 'Accept-Encoding: br;q=0' -H 'Content-Type: text/html' --data "$long"
req --http1.0 -H 'Accept-Encoding: br' -H 'Content-Type: text/html' --data "$long"
req -H 'Accept-Encoding: *' -H 'Content-Type: application/json' --data "$long"
req -H 'Accept-Encoding: gzip;q=0.5, br;q=0.8' -H 'Content-Type: text/html' --data "$long"
--- response_body
0
0
0
0
0
0
1
1
--- exit_code: 0



=== TEST 5: types "*", a chunked upstream body, quality 11, text mode
--- extra_yaml_config
plugins:
  - brotli
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello_chunked", "plugins": {"brotli": {"types": "*", "min_length": 1, "comp_level": 11, "mode": 1, "lgwin": 0}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 6: compressed, decodes to the upstream's body
--- extra_yaml_config
plugins:
  - brotli
--- exec
curl -s -D h.txt -o b.br -H 'Accept-Encoding: br' http://127.0.0.1:1984/hello_chunked
grep -ci '^content-encoding: br' h.txt
$PYTHON -c 'import brotli; print(brotli.decompress(open("b.br", "rb").read()).decode(), end="")'
--- response_body
1
hello world
