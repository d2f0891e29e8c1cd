# hmac-auth (APISIX 3.x "Signature" scheme): header parsing errors, each validation
# failure, hmac-sha1/256/512, @request-target with the query string, signed_headers,
# clock_skew, validate_request_body (Digest, 413), hide_credentials, anonymous_consumer,
# credentials, duplicate key_id. The Date of the signed requests is fixed, so most routes
# allow a clock skew of decades; one route keeps the default and refuses it.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: a consumer with an access key
--- admin
PUT /apisix/admin/consumers
{"username": "jack", "plugins": {"hmac-auth": {"key_id": "my-access-key", "secret_key": "my-secret-key"}}}
--- error_code: 201



=== TEST 2: key_id and secret_key are required
--- admin
PUT /apisix/admin/consumers
{"username": "nosecret", "plugins": {"hmac-auth": {"key_id": "k2"}}}
--- error_code: 400
--- response_body_json
{"error_msg": "invalid plugins configuration: failed to check the configuration of plugin hmac-auth err: property \"secret_key\" is required"}



=== TEST 3: routes: a wide clock skew, and the default one
--- admin
PUT /apisix/admin/routes/1
{
    "uris": ["/hello", "/uri"],
    "plugins": {"hmac-auth": {"clock_skew": 2000000000}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
PUT /apisix/admin/routes/2
{
    "uri": "/hello",
    "host": "skew.test",
    "plugins": {"hmac-auth": {}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code eval
[201, 201]
--- response_body_json_subset eval
['{"value": {"plugins": {"hmac-auth": {"clock_skew": 2000000000, "allowed_algorithms": ["hmac-sha1", "hmac-sha256", "hmac-sha512"], "signed_headers": ["date"], "validate_request_body": false, "max_req_body_size": 67108864, "hide_credentials": false, "realm": "hmac"}}}}',
 '{"value": {"plugins": {"hmac-auth": {"clock_skew": 300}}}}']



=== TEST 4: no Authorization header
--- request
GET /hello
--- error_code: 401
--- response_body
{"message":"client request can't be validated: missing Authorization header"}
--- response_headers
WWW-Authenticate: hmac realm="hmac"



=== TEST 5: not a Signature
--- request
GET /hello
--- more_headers
Authorization: Basic Zm9vOmJhcg==
--- error_code: 401
--- response_body
{"message":"client request can't be validated: Authorization header does not start with 'Signature'"}



=== TEST 6: no keyId
--- request
GET /hello
--- more_headers
Date: Tue, 19 Jan 2021 07:00:00 GMT
Authorization: Signature algorithm="hmac-sha256",headers="@request-target date",signature="3/b6+ksQ85o5CayvoJ9je3999RSNioqPdk2awXewqmw="
--- error_code: 401
--- response_body
{"message":"client request can't be validated"}
--- error_log
client request can't be validated: keyId or signature missing



=== TEST 7: no algorithm
--- request
GET /hello
--- more_headers
Date: Tue, 19 Jan 2021 07:00:00 GMT
Authorization: Signature keyId="my-access-key",headers="@request-target date",signature="3/b6+ksQ85o5CayvoJ9je3999RSNioqPdk2awXewqmw="
--- error_code: 401
--- error_log
client request can't be validated: algorithm missing



=== TEST 8: an unknown keyId
--- request
GET /hello
--- more_headers
Date: Tue, 19 Jan 2021 07:00:00 GMT
Authorization: Signature keyId="who",algorithm="hmac-sha256",headers="@request-target date",signature="3/b6+ksQ85o5CayvoJ9je3999RSNioqPdk2awXewqmw="
--- error_code: 401
--- error_log
client request can't be validated: Invalid key_id



=== TEST 9: no Date header
--- request
GET /hello
--- more_headers
Authorization: Signature keyId="my-access-key",algorithm="hmac-sha256",headers="@request-target date",signature="3/b6+ksQ85o5CayvoJ9je3999RSNioqPdk2awXewqmw="
--- error_code: 401
--- error_log
client request can't be validated: Date header missing. failed to validate clock skew



=== TEST 10: a Date that is not one
--- request
GET /hello
--- more_headers
Date: yesterday
Authorization: Signature keyId="my-access-key",algorithm="hmac-sha256",headers="@request-target date",signature="3/b6+ksQ85o5CayvoJ9je3999RSNioqPdk2awXewqmw="
--- error_code: 401
--- error_log
client request can't be validated: Invalid GMT format time



=== TEST 11: the default clock skew refuses an old Date
--- request
GET /hello
--- more_headers
Host: skew.test
Date: Tue, 19 Jan 2021 07:00:00 GMT
Authorization: Signature keyId="my-access-key",algorithm="hmac-sha256",headers="@request-target date",signature="3/b6+ksQ85o5CayvoJ9je3999RSNioqPdk2awXewqmw="
--- error_code: 401
--- error_log
client request can't be validated: Clock skew exceeded



=== TEST 12: date must be among the signed headers
--- request
GET /hello
--- more_headers
Date: Tue, 19 Jan 2021 07:00:00 GMT
Authorization: Signature keyId="my-access-key",algorithm="hmac-sha256",headers="@request-target",signature="3/b6+ksQ85o5CayvoJ9je3999RSNioqPdk2awXewqmw="
--- error_code: 401
--- error_log
client request can't be validated: expected header "date" missing in signing



=== TEST 13: a valid signature with each algorithm
--- request eval
["GET /hello", "GET /hello", "GET /hello"]
--- more_headers eval
["Date: Tue, 19 Jan 2021 07:00:00 GMT\nAuthorization: Signature keyId=\"my-access-key\",algorithm=\"hmac-sha256\",headers=\"\@request-target date\",signature=\"3/b6+ksQ85o5CayvoJ9je3999RSNioqPdk2awXewqmw=\"",
 "Date: Tue, 19 Jan 2021 07:00:00 GMT\nAuthorization: Signature keyId=\"my-access-key\",algorithm=\"hmac-sha1\",headers=\"\@request-target date\",signature=\"3tTQ8z4cryeluUBpGpaeKEl8qfE=\"",
 "Date: Tue, 19 Jan 2021 07:00:00 GMT\nAuthorization: Signature keyId=\"my-access-key\",algorithm=\"hmac-sha512\",headers=\"\@request-target date\",signature=\"noUw5veA/ejE44W6EzgOEOFcvK6q6lKAqZEhUBZQANFCA4hZJ8i6DvQXD+vDYfUoHqQXzf8JQals6LBjhGj+AA==\""]
--- response_body eval
["hello world\n", "hello world\n", "hello world\n"]



=== TEST 14: the consumer is named upstream; Authorization is kept
--- request
GET /uri
--- more_headers
Date: Tue, 19 Jan 2021 07:00:00 GMT
Authorization: Signature keyId="my-access-key",algorithm="hmac-sha256",headers="@request-target date",signature="EYXZJXLukjyMUfmyvNr7uB7L/+g+jMr9EjvnUr/hr+g="
--- response_body_like
authorization: Signature keyId=.*x-consumer-username: jack



=== TEST 15: a wrong signature (the signature is for another path)
--- request
GET /uri
--- more_headers
Date: Tue, 19 Jan 2021 07:00:00 GMT
Authorization: Signature keyId="my-access-key",algorithm="hmac-sha256",headers="@request-target date",signature="3/b6+ksQ85o5CayvoJ9je3999RSNioqPdk2awXewqmw="
--- error_code: 401
--- response_body
{"message":"client request can't be validated"}
--- error_log
client request can't be validated: Invalid signature
--- no_error_log
my-secret-key



=== TEST 16: @request-target includes the query string; other headers can be signed
--- request
GET /hello?a=1&b=2
--- more_headers
Date: Tue, 19 Jan 2021 07:00:00 GMT
X-Custom: v1
Authorization: Signature keyId="my-access-key",algorithm="hmac-sha256",headers="@request-target date x-custom",signature="Im6+FWdC7L+KJ0jRRDXTSOPsTVVvHvWmq//pY2s+Dq8="
--- response_body
hello world



=== TEST 17: a signed header changed in transit
--- request
GET /hello?a=1&b=2
--- more_headers
Date: Tue, 19 Jan 2021 07:00:00 GMT
X-Custom: v2
Authorization: Signature keyId="my-access-key",algorithm="hmac-sha256",headers="@request-target date x-custom",signature="Im6+FWdC7L+KJ0jRRDXTSOPsTVVvHvWmq//pY2s+Dq8="
--- error_code: 401



=== TEST 18: allowed_algorithms, hide_credentials, validate_request_body
--- admin
PUT /apisix/admin/routes/3
{
    "uri": "/hello",
    "host": "strict.test",
    "plugins": {"hmac-auth": {"clock_skew": 2000000000, "allowed_algorithms": ["hmac-sha256"], "validate_request_body": true, "max_req_body_size": 16}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
PUT /apisix/admin/routes/4
{
    "uri": "/old_uri",
    "plugins": {"hmac-auth": {"clock_skew": 2000000000, "hide_credentials": true}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code eval
[201, 201]



=== TEST 19: an algorithm the route does not allow
--- request
GET /hello
--- more_headers
Host: strict.test
Date: Tue, 19 Jan 2021 07:00:00 GMT
Authorization: Signature keyId="my-access-key",algorithm="hmac-sha1",headers="@request-target date",signature="3tTQ8z4cryeluUBpGpaeKEl8qfE="
--- error_code: 401
--- error_log
client request can't be validated: Invalid algorithm



=== TEST 20: the body's digest: right, wrong, missing
--- request eval
["POST /hello\nhello body", "POST /hello\nhello bodx", "POST /hello\nhello body"]
--- more_headers eval
["Host: strict.test\nDate: Tue, 19 Jan 2021 07:00:00 GMT\nDigest: SHA-256=bZh29tVxZ264b3NbqUdtqR7F0MUqafZDTJP1yeaAIQ4=\nAuthorization: Signature keyId=\"my-access-key\",algorithm=\"hmac-sha256\",headers=\"\@request-target date\",signature=\"wK5juyByAUrHxczUC3e9rlR1Yv+MegeG49GKVNWL+bQ=\"",
 "Host: strict.test\nDate: Tue, 19 Jan 2021 07:00:00 GMT\nDigest: SHA-256=bZh29tVxZ264b3NbqUdtqR7F0MUqafZDTJP1yeaAIQ4=\nAuthorization: Signature keyId=\"my-access-key\",algorithm=\"hmac-sha256\",headers=\"\@request-target date\",signature=\"wK5juyByAUrHxczUC3e9rlR1Yv+MegeG49GKVNWL+bQ=\"",
 "Host: strict.test\nDate: Tue, 19 Jan 2021 07:00:00 GMT\nAuthorization: Signature keyId=\"my-access-key\",algorithm=\"hmac-sha256\",headers=\"\@request-target date\",signature=\"wK5juyByAUrHxczUC3e9rlR1Yv+MegeG49GKVNWL+bQ=\""]
--- error_code eval
[200, 401, 401]
--- error_log
client request can't be validated: Invalid digest



=== TEST 21: a body over max_req_body_size
--- request
POST /hello
a body of more than sixteen bytes
--- more_headers
Host: strict.test
Date: Tue, 19 Jan 2021 07:00:00 GMT
Digest: SHA-256=bZh29tVxZ264b3NbqUdtqR7F0MUqafZDTJP1yeaAIQ4=
Authorization: Signature keyId="my-access-key",algorithm="hmac-sha256",headers="@request-target date",signature="wK5juyByAUrHxczUC3e9rlR1Yv+MegeG49GKVNWL+bQ="
--- error_code: 413
--- response_body
{"message":"request size 33 is greater than the maximum size 16 allowed"}
--- error_log
failed to read request body: request size 33 is greater than the maximum size 16 allowed



=== TEST 22: hide_credentials removes Authorization
--- request
GET /old_uri
--- more_headers
Date: Tue, 19 Jan 2021 07:00:00 GMT
Authorization: Signature keyId="my-access-key",algorithm="hmac-sha256",headers="@request-target date",signature="0rzfEOkFIcCagN9bYaYx6IEj+bwKbA0eB/1Nt/khxRM="
--- response_body_like
x-consumer-username: jack
--- response_body_unlike
authorization



=== TEST 23: a credential of jack; a duplicate key_id is refused
--- admin
PUT /apisix/admin/consumers/jack/credentials/hmac-1
{"plugins": {"hmac-auth": {"key_id": "cred-key", "secret_key": "cred-secret"}}}
PUT /apisix/admin/consumers
{"username": "rose", "plugins": {"hmac-auth": {"key_id": "my-access-key", "secret_key": "x"}}}
--- error_code eval
[201, 400]
--- response_body_json_subset eval
['{"key": "/apisix/consumers/jack/credentials/hmac-1", "value": {"id": "hmac-1", "plugins": {"hmac-auth": {"key_id": "cred-key", "secret_key": "cred-secret"}}}}',
 '{"error_msg": "duplicate key_id of plugin hmac-auth found with consumer: jack"}']



=== TEST 24: the credential's signature names jack and the credential
--- request
GET /uri
--- more_headers
Date: Tue, 19 Jan 2021 07:00:00 GMT
Authorization: Signature keyId="cred-key",algorithm="hmac-sha256",headers="@request-target date",signature="noUODJcJYgameSfO8RXl+PUKN5FoNbFnrSy7tpoQu4s="
--- response_body_like
x-consumer-username: jack
x-credential-identifier: hmac-1



=== TEST 25: the anonymous consumer
--- admin
PUT /apisix/admin/consumers
{"username": "anon"}
PUT /apisix/admin/routes/5
{
    "uri": "/uri",
    "host": "anon.test",
    "plugins": {"hmac-auth": {"anonymous_consumer": "anon"}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code eval
[201, 201]



=== TEST 26: no signature: the anonymous consumer
--- request
GET /uri
--- more_headers
Host: anon.test
--- response_body_like
x-consumer-username: anon
