# real-ip: the client address from a header or an argument, trusted_addresses, recursive;
# later plugins (ip-restriction) see it.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: source required, addresses checked
--- admin
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"real-ip": {}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"real-ip": {"source": "arg_realip", "trusted_addresses": ["1.1.1.1/33"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[400, 400]



=== TEST 2: from an argument, checked by ip-restriction
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"real-ip": {"source": "arg_realip"}, "ip-restriction": {"whitelist": ["1.2.3.4"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201



=== TEST 3: the real address decides; a bad one is ignored
--- request eval
["GET /hello?realip=1.2.3.4", "GET /hello?realip=1.2.3.5:80", "GET /hello?realip=[::1]:80", "GET /hello?realip=bad"]
--- error_code eval
[200, 403, 403, 403]



=== TEST 4: X-Forwarded-For, recursive, trusted_addresses
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"real-ip": {"source": "http_x_forwarded_for", "recursive": true, "trusted_addresses": ["127.0.0.0/24", "10.0.0.0/8"]}, "ip-restriction": {"whitelist": ["1.2.3.4"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 5: the last untrusted address of the chain
--- request eval
["GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["X-Forwarded-For: 5.5.5.5, 1.2.3.4, 10.0.0.1", "X-Forwarded-For: 1.2.3.4, 5.5.5.5, 10.0.0.1", "X-Forwarded-For: 1.2.3.4, 10.0.0.2"]
--- error_code eval
[200, 403, 200]



=== TEST 6: an untrusted peer is not believed
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"real-ip": {"source": "http_x_forwarded_for", "trusted_addresses": ["10.0.0.0/8"]}, "ip-restriction": {"whitelist": ["1.2.3.4"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 7: refused: the peer 127.0.0.1 is not trusted
--- request
GET /hello
--- more_headers
X-Forwarded-For: 1.2.3.4
--- error_code: 403
