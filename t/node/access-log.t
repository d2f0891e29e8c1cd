# The access log: APISIX's default `main` format (logs/access.log), written by each worker in
# batches (entries rendered at the flush, once a second or every 512 requests).
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: a route
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201



=== TEST 2: a proxied request: remote, host, request, status, bytes, times, user agent, upstream
--- exec
curl -s -o /dev/null -A 'curl-test' 'http://127.0.0.1:1984/hello?a=1'
until grep -q 'hello?a=1' logs/access.log; do sleep 0.05; done
grep 'hello?a=1' logs/access.log | sed -E 's/\[[^]]+\]/[TIME]/; s/ [0-9]+\.[0-9]{3} / T /g'
--- response_body
127.0.0.1 - - [TIME] 127.0.0.1:1984 "GET /hello?a=1 HTTP/1.1" 200 12 T "-" "curl-test" 127.0.0.1:1980 200 T "http://127.0.0.1:1984/hello?a=1"



=== TEST 3: Referer, a Basic user, escaped user agents; a 404 without upstream
--- exec
curl -s -o /dev/null -u 'jack:pw' -e 'http://r.example/' -A 'ua"x\y'  'http://127.0.0.1:1984/hello?b=2'
curl -s -o /dev/null -A 'q"z' 'http://127.0.0.1:1984/hello?c=3'
curl -s -o /dev/null -A 'curl-test' 'http://127.0.0.1:1984/nowhere'
until grep -q 'nowhere' logs/access.log; do sleep 0.05; done
grep -E 'hello\?[bc]=|nowhere' logs/access.log | sed -E 's/\[[^]]+\]/[TIME]/; s/ [0-9]+\.[0-9]{3} / T /g'
--- response_body
127.0.0.1 - jack [TIME] 127.0.0.1:1984 "GET /hello?b=2 HTTP/1.1" 200 12 T "http://r.example/" "ua\x22x\x5Cy" 127.0.0.1:1980 200 T "http://127.0.0.1:1984/hello?b=2"
127.0.0.1 - - [TIME] 127.0.0.1:1984 "GET /hello?c=3 HTTP/1.1" 200 12 T "-" "q\x22z" 127.0.0.1:1980 200 T "http://127.0.0.1:1984/hello?c=3"
127.0.0.1 - - [TIME] 127.0.0.1:1984 "GET /nowhere HTTP/1.1" 404 36 T "-" "curl-test" - - - "http://127.0.0.1:1984"
