# basic-auth: HTTP Basic credentials checked against consumers and credentials; the
# failure codes and bodies, hide_credentials, anonymous_consumer, identity headers.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: a consumer foo:bar
--- admin
PUT /apisix/admin/consumers
{"username": "foo", "labels": {"custom_id": "cid-foo"}, "plugins": {"basic-auth": {"username": "foo", "password": "bar"}}}
--- error_code: 201



=== TEST 2: a consumer conf needs username and password
--- admin
PUT /apisix/admin/consumers
{"username": "nopw", "plugins": {"basic-auth": {"username": "nopw"}}}
--- error_code: 400
--- response_body_json
{"error_msg": "invalid plugins configuration: failed to check the configuration of plugin basic-auth err: property \"password\" is required"}



=== TEST 3: a route with basic-auth
--- admin
PUT /apisix/admin/routes/1
{
    "uris": ["/hello", "/uri"],
    "plugins": {"basic-auth": {}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"basic-auth": {"realm": "basic", "hide_credentials": false}}}}



=== TEST 4: no Authorization header
--- request
GET /hello
--- error_code: 401
--- response_body
{"message":"Missing authorization in request"}
--- response_headers
WWW-Authenticate: Basic realm="basic"



=== TEST 5: not a Basic header
--- request
GET /hello
--- more_headers
Authorization: Bearer abc
--- error_code: 401
--- response_body
{"message":"Invalid authorization in request"}
--- response_headers
WWW-Authenticate: Basic realm="basic"
--- error_log
Invalid authorization header format



=== TEST 6: not base64
--- request
GET /hello
--- more_headers
Authorization: Basic %%%not-base64%%%
--- error_code: 401
--- response_body
{"message":"Invalid authorization in request"}



=== TEST 7: base64 without a colon
--- request
GET /hello
--- more_headers
Authorization: Basic Zm9v
--- error_code: 401
--- response_body
{"message":"Invalid authorization in request"}



=== TEST 8: a wrong password (never logged)
--- request
GET /hello
--- more_headers
Authorization: Basic Zm9vOmJheg==
--- error_code: 401
--- response_body
{"message":"Invalid user authorization"}
--- response_headers
WWW-Authenticate: Basic realm="basic"
--- no_error_log
Zm9vOmJheg==
foo:baz



=== TEST 9: an unknown user
--- request
GET /hello
--- more_headers
Authorization: Basic YmFyOmJhcg==
--- error_code: 401
--- response_body
{"message":"Invalid user authorization"}
--- error_log
failed to find user: invalid user



=== TEST 10: the right credentials; the consumer named upstream, Authorization kept
--- request
GET /uri
--- more_headers
Authorization: Basic Zm9vOmJhcg==
X-Consumer-Username: root
--- response_body_like
authorization: Basic Zm9vOmJhcg==
.*x-consumer-custom-id: cid-foo
x-consumer-username: foo
--- response_body_unlike
root
--- no_error_log
Zm9vOmJhcg==



=== TEST 11: the scheme is case-insensitive and whitespace in the decoded pair is dropped
--- request
GET /hello
--- more_headers
Authorization: basic IGZvbyA6IGJhciA=
--- response_body
hello world



=== TEST 12: another consumer cannot reuse the username
--- admin
PUT /apisix/admin/consumers
{"username": "foo2", "plugins": {"basic-auth": {"username": "foo", "password": "other"}}}
--- error_code: 400
--- response_body_json
{"error_msg": "duplicate username of plugin basic-auth found with consumer: foo"}



=== TEST 13: a credential of foo with its own user
--- admin
PUT /apisix/admin/consumers/foo/credentials/basic-1
{"plugins": {"basic-auth": {"username": "cred", "password": "secret-pw"}}}
--- error_code: 201



=== TEST 14: the credential authenticates as foo
--- request
GET /uri
--- more_headers
Authorization: Basic Y3JlZDpzZWNyZXQtcHc=
--- response_body_like
x-consumer-username: foo
x-credential-identifier: basic-1



=== TEST 15: hide_credentials and a realm
--- admin
PUT /apisix/admin/routes/2
{
    "uri": "/old_uri",
    "plugins": {"basic-auth": {"hide_credentials": true, "realm": "private"}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 201



=== TEST 16: Authorization does not reach the upstream
--- request
GET /old_uri
--- more_headers
Authorization: Basic Zm9vOmJhcg==
--- response_body_like
x-consumer-username: foo
--- response_body_unlike
authorization



=== TEST 17: the route's realm in the challenge
--- request
GET /old_uri
--- error_code: 401
--- response_headers
WWW-Authenticate: Basic realm="private"



=== TEST 18: anonymous_consumer
--- admin
PUT /apisix/admin/consumers
{"username": "guest"}
PUT /apisix/admin/routes/3
{
    "uri": "/uri",
    "host": "anon.test",
    "plugins": {"basic-auth": {"anonymous_consumer": "guest"}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
PUT /apisix/admin/routes/4
{
    "uri": "/uri",
    "host": "noanon.test",
    "plugins": {"basic-auth": {"anonymous_consumer": "ghost"}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code eval
[201, 201, 201]



=== TEST 19: a wrong password falls back to the anonymous consumer
--- request
GET /uri
--- more_headers
Host: anon.test
Authorization: Basic Zm9vOmJheg==
--- response_body_like
x-consumer-username: guest
--- response_body_unlike
x-consumer-custom-id



=== TEST 20: a missing anonymous consumer
--- request
GET /uri
--- more_headers
Host: noanon.test
--- error_code: 401
--- response_body
{"message":"Invalid user authorization"}
--- response_headers
WWW-Authenticate: Basic realm="basic"
--- error_log
basic-auth failed to authenticate the request, code: 401. error: failed to get anonymous consumer ghost
