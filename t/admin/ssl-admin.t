# The Admin API over HTTPS (deployment.admin.https_admin) and with client certificates
# (admin_api_mtls.admin_ssl_ca_cert).
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: the certificates the Admin API will use, in the prefix
--- exec
mkdir -p conf/cert && cp $REPO/t/certs/test.crt $REPO/t/certs/test.key $REPO/t/certs/mtls_ca.crt conf/cert/
--- request
GET /hello
--- error_code: 404



=== TEST 2: https_admin on
--- extra_yaml_config
deployment:
  admin:
    https_admin: true
    admin_api_mtls:
      admin_ssl_cert: conf/cert/test.crt
      admin_ssl_cert_key: conf/cert/test.key
--- request
GET /hello
--- error_code: 404



=== TEST 3: the Admin API speaks TLS only
--- exec
curl -sk -o /dev/null -w '%{http_code}\n' https://127.0.0.1:9180/apisix/admin/routes
curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:9180/apisix/admin/routes || true
--- response_body_like
^200\n(000|400)\n$



=== TEST 4: admin_ssl_ca_cert on
--- extra_yaml_config
deployment:
  admin:
    https_admin: true
    admin_api_mtls:
      admin_ssl_cert: conf/cert/test.crt
      admin_ssl_cert_key: conf/cert/test.key
      admin_ssl_ca_cert: conf/cert/mtls_ca.crt
--- request
GET /hello
--- error_code: 404



=== TEST 5: a client certificate from that CA is required
--- exec
curl -sk -o /dev/null -w '%{http_code}\n' https://127.0.0.1:9180/apisix/admin/routes || true
curl -sk -o /dev/null -w '%{http_code}\n' --cert $REPO/t/certs/mtls_client.crt --key $REPO/t/certs/mtls_client.key https://127.0.0.1:9180/apisix/admin/routes
--- response_body_like
^000\n200\n$



=== TEST 6: an unreadable certificate file: the gateway does not start, and says why
--- extra_yaml_config
deployment:
  admin:
    https_admin: true
    admin_api_mtls:
      admin_ssl_cert: conf/cert/missing.crt
      admin_ssl_cert_key: conf/cert/test.key
--- exec
$GATEWAY stop -p $PREFIX > /dev/null 2>&1
$GATEWAY start -p $PREFIX > out.txt 2>&1; echo "exit $?"
grep -ho "admin_api_mtls: No such file or directory" out.txt logs/error.log | head -1
$GATEWAY stop -p $PREFIX > /dev/null 2>&1 || true
--- response_body_like
exit [1-9]
admin_api_mtls: No such file or directory
--- error_log
admin_api_mtls: No such file or directory
