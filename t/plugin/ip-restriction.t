# ip-restriction: whitelist / blacklist of addresses and CIDRs (IPv4, IPv6), message,
# response_code, and the schema's errors.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: schema: whitelist xor blacklist, valid addresses, response_code 403..404
--- admin
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"ip-restriction": {"whitelist": ["127.0.0.1"], "blacklist": ["127.0.0.2"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"ip-restriction": {}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"ip-restriction": {"whitelist": ["127.0.0.1/33"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"ip-restriction": {"whitelist": ["127.0.0.1"], "response_code": 500}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[400, 400, 400, 400]



=== TEST 2: a whitelist that holds the client
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"ip-restriction": {"whitelist": ["10.0.0.0/8", "127.0.0.0/24", "::1"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"ip-restriction": {"message": "Your IP address is not allowed", "response_code": 403}}}}



=== TEST 3: allowed
--- request
GET /hello
--- response_body
hello world



=== TEST 4: a whitelist without the client: 403 and the default message
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"ip-restriction": {"whitelist": ["10.0.0.1", "fe80::/10"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 5: refused
--- request
GET /hello
--- error_code: 403
--- response_body
{"message":"Your IP address is not allowed"}



=== TEST 6: a blacklist CIDR with the client, custom message and 404
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"ip-restriction": {"blacklist": ["127.0.0.0/8"], "message": "go away", "response_code": 404}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 7: refused with the message
--- request
GET /hello
--- error_code: 404
--- response_body
{"message":"go away"}



=== TEST 8: a blacklist without the client
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"ip-restriction": {"blacklist": ["127.0.0.2", "2001:db8::/32"]}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 200



=== TEST 9: allowed
--- request
GET /hello
--- response_body
hello world
