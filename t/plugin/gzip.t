# gzip: compression by type, length, Accept-Encoding, HTTP version; Vary.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: comp_level 1..9; types an array or "*"
--- admin
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"gzip": {"comp_level": 10}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"gzip": {"types": "text/html"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[400, 400]



=== TEST 2: a route with gzip (the mock /echo echoes request headers and body)
--- admin
PUT /apisix/admin/routes/1
{"uri": "/echo", "plugins": {"gzip": {"types": ["text/html", "application/json"], "min_length": 30, "comp_level": 6, "vary": true}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"gzip": {"min_length": 30, "http_version": 1.1, "buffers": {"number": 32, "size": 4096}}}}}



=== TEST 3: compressed: right type, long enough, gzip accepted
--- exec
body=$(printf 'a%.0s' $(seq 1 100))
curl -s -D h.txt -o b.gz -H 'Accept-Encoding: gzip, deflate' -H 'Content-Type: text/html; charset=utf-8' --data "$body" http://127.0.0.1:1984/echo
grep -i -E '^(content-encoding|vary):' h.txt | tr -d '\r' | sort
gzip -dc b.gz | wc -c
--- response_body
Content-Encoding: gzip
Vary: Accept-Encoding
100



=== TEST 4: not compressed: too short, other type, not accepted, q=0, HTTP/1.0
--- exec
long=$(printf 'a%.0s' $(seq 1 100))
req() { curl -s -D - -o /dev/null "$@" http://127.0.0.1:1984/echo | grep -ci '^content-encoding: gzip'; }
req -H 'Accept-Encoding: gzip' -H 'Content-Type: text/html' --data "short"
req -H 'Accept-Encoding: gzip' -H 'Content-Type: text/plain' --data "$long"
req -H 'Content-Type: text/html' --data "$long"
req -H 'Accept-Encoding: gzip;q=0' -H 'Content-Type: text/html' --data "$long"
req --http1.0 -H 'Accept-Encoding: gzip' -H 'Content-Type: text/html' --data "$long"
req -H 'Accept-Encoding: gzip' -H 'Content-Type: application/json' --data "$long"
--- response_body
0
0
0
0
0
1
--- exit_code: 0



=== TEST 5: types "*" and a chunked upstream body
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello_chunked", "plugins": {"gzip": {"types": "*", "min_length": 1}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 6: compressed
--- exec
curl -s --compressed -D h.txt http://127.0.0.1:1984/hello_chunked
grep -ci '^content-encoding: gzip' h.txt
--- response_body
hello world
1
