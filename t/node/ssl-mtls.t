# Client mTLS per `ssls.client` (ca, skip_mtls_uri_regex), and APISIX's check of the Host
# against the SNI that admitted the connection (verify_https_client: 400 on a mismatch).
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: test.com and *.test.com need a client certificate from mtls_ca; www.test.com does not
--- admin
PUT /apisix/admin/ssls/1
{"cert": ${{file t/certs/test.crt}}, "key": ${{file t/certs/test.key}}, "snis": ["test.com", "*.test.com"], "client": {"ca": ${{file t/certs/mtls_ca.crt}}}}
PUT /apisix/admin/ssls/2
{"cert": ${{file t/certs/www.crt}}, "key": ${{file t/certs/www.key}}, "snis": ["www.test.com"]}
PUT /apisix/admin/routes/1
{"uri": "/hello", "upstream": {"nodes": {"127.0.0.1:1980": 1}, "type": "roundrobin"}}
PUT /apisix/admin/routes/2
{"uri": "/echo", "upstream": {"nodes": {"127.0.0.1:1980": 1}, "type": "roundrobin"}}
--- error_code eval
[201, 201, 201, 201]



=== TEST 2: a verified client certificate passes
--- exec
$PYTHON $REPO/t/lib/tls_client.py --sni test.com --cert $REPO/t/certs/mtls_client.crt --key $REPO/t/certs/mtls_client.key GET /hello GET /hello
--- response_body
200 hello world
200 hello world



=== TEST 3: no client certificate, or one from another CA: refused in the handshake
--- exec
$PYTHON $REPO/t/lib/tls_client.py --tls1.2 --sni test.com GET /hello
$PYTHON $REPO/t/lib/tls_client.py --tls1.2 --sni test.com --cert $REPO/t/certs/mtls_rogue.crt --key $REPO/t/certs/mtls_rogue.key GET /hello
--- response_body_like
^handshake failed: \S+
handshake failed: \S+
$



=== TEST 4: TLS 1.3: the refusal shows on the first read
--- exec
$PYTHON $REPO/t/lib/tls_client.py --sni test.com GET /hello
--- response_body_like
^request failed: \S+



=== TEST 5: mTLS for a.test.com, then requests for b.test.com: 400 (the SNI must be the Host)
--- exec
$PYTHON $REPO/t/lib/tls_client.py --sni a.test.com --host-header b.test.com --cert $REPO/t/certs/mtls_client.crt --key $REPO/t/certs/mtls_client.key GET /hello
$PYTHON $REPO/t/lib/tls_client.py --sni a.test.com --host-header a.test.com --cert $REPO/t/certs/mtls_client.crt --key $REPO/t/certs/mtls_client.key GET /hello
--- response_body_like
^400 .*400 Bad Request.*
200 hello world
--- error_log
client certificate verified with SNI a.test.com, but the host is b.test.com



=== TEST 6: admitted without mTLS (www.test.com), then a request for test.com, which needs it: 400
--- exec
$PYTHON $REPO/t/lib/tls_client.py --sni www.test.com --host-header test.com GET /hello
$PYTHON $REPO/t/lib/tls_client.py --sni www.test.com --host-header www.test.com GET /hello
--- response_body_like
^400 .*
200 hello world
--- error_log
client certificate was not present



=== TEST 7: skip_mtls_uri_regex: those URIs go without a client certificate
--- admin
PUT /apisix/admin/ssls/1
{"cert": ${{file t/certs/test.crt}}, "key": ${{file t/certs/test.key}}, "snis": ["test.com", "*.test.com"], "client": {"ca": ${{file t/certs/mtls_ca.crt}}, "skip_mtls_uri_regex": ["/hel+o"]}}
--- error_code: 200



=== TEST 8: /hello without a certificate passes, /echo does not; with one both pass
--- exec
$PYTHON $REPO/t/lib/tls_client.py --sni test.com GET /hello GET /echo
$PYTHON $REPO/t/lib/tls_client.py --sni test.com --cert $REPO/t/certs/mtls_client.crt --key $REPO/t/certs/mtls_client.key GET /echo
--- response_body_like
^200 hello world
400 .*
200 $
--- error_log
client certificate was not present



=== TEST 9: an untrusted certificate still fails the handshake with skip_mtls_uri_regex
--- exec
$PYTHON $REPO/t/lib/tls_client.py --tls1.2 --sni test.com --cert $REPO/t/certs/mtls_rogue.crt --key $REPO/t/certs/mtls_rogue.key GET /hello
--- response_body_like
^handshake failed: \S+
