# Upstream TLS (`scheme: https`) against the mock's TLS listener on 1983: SNI from the Host
# sent upstream, pooled keep-alive, tls.verify, client certificates (inline or client_cert_id).
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: an https upstream; the Host is rewritten to up.test.com
--- admin
PUT /apisix/admin/routes/1
{"uris": ["/hello", "/sni", "/client_cert", "/body_size"], "upstream": {"scheme": "https", "pass_host": "rewrite", "upstream_host": "up.test.com", "nodes": {"127.0.0.1:1983": 1}, "type": "roundrobin"}}
--- error_code: 201



=== TEST 2: proxied over TLS, SNI is the upstream Host, several requests
--- pipelined_requests eval
["GET /hello", "GET /sni", "GET /client_cert"]
--- response_body eval
["hello world\n", "up.test.com\n", "none\n"]



=== TEST 3: a large body to the TLS upstream
--- exec
head -c 3000000 /dev/zero > body.bin
curl -s --data-binary @body.bin http://127.0.0.1:1984/body_size
--- response_body chomp
3000000



=== TEST 4: pass_host pass: the client's Host (without port) is the SNI
--- admin
PUT /apisix/admin/routes/1
{"uris": ["/sni"], "upstream": {"scheme": "https", "nodes": {"127.0.0.1:1983": 1}, "type": "roundrobin"}}
--- error_code: 200



=== TEST 5: SNI from the Host header
--- request
GET /sni
--- more_headers
Host: api.test.com:1984
--- response_body
api.test.com



=== TEST 6: tls.verify with the system trust store: the self-signed mock fails → 502
--- admin
PUT /apisix/admin/routes/1
{"uris": ["/sni"], "upstream": {"scheme": "https", "tls": {"verify": true}, "pass_host": "rewrite", "upstream_host": "test.com", "nodes": {"127.0.0.1:1983": 1}, "type": "roundrobin"}}
--- error_code: 200



=== TEST 7: the 502
--- request
GET /sni
--- error_code: 502
--- error_log
SSL_do_handshake() failed: self-signed certificate



=== TEST 8: a client certificate inline (tls.client_cert/client_key)
--- admin
PUT /apisix/admin/routes/1
{"uris": ["/client_cert"], "upstream": {"scheme": "https", "tls": {"client_cert": ${{file t/certs/mtls_client.crt}}, "client_key": ${{file t/certs/mtls_client.key}}}, "nodes": {"127.0.0.1:1983": 1}, "type": "roundrobin"}}
--- error_code: 200



=== TEST 9: the mock saw it
--- request
GET /client_cert
--- response_body
gateway-client



=== TEST 10: a client certificate from an ssls object of type client (client_cert_id)
--- admin
PUT /apisix/admin/ssls/9
{"type": "client", "cert": ${{file t/certs/mtls_client.crt}}, "key": ${{file t/certs/mtls_client.key}}}
PUT /apisix/admin/routes/1
{"uris": ["/client_cert"], "upstream": {"scheme": "https", "tls": {"client_cert_id": "9"}, "nodes": {"127.0.0.1:1983": 1}, "type": "roundrobin"}}
--- error_code eval
[201, 200]



=== TEST 11: the mock saw it
--- request
GET /client_cert
--- response_body
gateway-client



=== TEST 12: the key of the client ssls object never leaves the Admin API or reaches the log
--- admin
GET /apisix/admin/ssls/9
--- error_code: 200
--- response_body_unlike
PRIVATE KEY
--- no_error_log
PRIVATE KEY



=== TEST 13: client_cert_id must name an ssls object of type client
--- admin
PUT /apisix/admin/upstreams/5
{"scheme": "https", "tls": {"client_cert_id": "404"}, "nodes": {"127.0.0.1:1983": 1}, "type": "roundrobin"}
PUT /apisix/admin/ssls/10
{"cert": ${{file t/certs/test.crt}}, "key": ${{file t/certs/test.key}}, "snis": ["test.com"]}
PUT /apisix/admin/upstreams/5
{"scheme": "https", "tls": {"client_cert_id": "10"}, "nodes": {"127.0.0.1:1983": 1}, "type": "roundrobin"}
--- error_code eval
[400, 201, 400]



=== TEST 14: repeated requests over the pooled TLS connections
--- exec
for i in 1 2 3 4 5; do curl -s http://127.0.0.1:1984/client_cert; done | sort | uniq -c | sed 's/^ *//'
--- response_body
5 gateway-client
