# jwt-auth: tokens from the header (Bearer or bare), the query and the cookie; every
# failure code and body; HS/RS/ES/PS/EdDSA consumers; alg "none" and algorithm confusion
# refused; exp/nbf and claims_to_verify; lifetime_grace_period; base64_secret;
# key_claim_name; hide_credentials; anonymous_consumer; credentials; duplicate keys.
# (Tokens were signed once with keys whose public halves are in t/certs/jwt/.)
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: a consumer with an HS256 secret; the consumer defaults are filled in
--- admin
PUT /apisix/admin/consumers
{"username": "jack", "labels": {"custom_id": "cid-jack"}, "plugins": {"jwt-auth": {"key": "user-key", "secret": "my-secret-key"}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"jwt-auth": {"key": "user-key", "secret": "my-secret-key", "algorithm": "HS256", "exp": 86400, "base64_secret": false, "lifetime_grace_period": 0}}}}



=== TEST 2: HS256 without a secret
--- admin
PUT /apisix/admin/consumers
{"username": "nosecret", "plugins": {"jwt-auth": {"key": "k-nosecret"}}}
--- error_code: 400
--- response_body_json
{"error_msg": "invalid plugins configuration: failed to check the configuration of plugin jwt-auth err: property \"secret\" is required when using HS based algorithms"}



=== TEST 3: base64_secret with a secret that is not base64
--- admin
PUT /apisix/admin/consumers
{"username": "badb64", "plugins": {"jwt-auth": {"key": "k-badb64", "secret": "%%%", "base64_secret": true}}}
--- error_code: 400
--- response_body_json
{"error_msg": "invalid plugins configuration: failed to check the configuration of plugin jwt-auth err: base64_secret required but the secret is not in base64 format"}



=== TEST 4: RS256 without a public key
--- admin
PUT /apisix/admin/consumers
{"username": "nopub", "plugins": {"jwt-auth": {"key": "k-nopub", "algorithm": "RS256"}}}
--- error_code: 400
--- response_body_like
failed to check the configuration of plugin jwt-auth err



=== TEST 5: a route with jwt-auth
--- admin
PUT /apisix/admin/routes/1
{
    "uris": ["/hello", "/uri"],
    "plugins": {"jwt-auth": {}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"jwt-auth": {"header": "authorization", "query": "jwt", "cookie": "jwt", "key_claim_name": "key", "realm": "jwt", "hide_credentials": false, "store_in_ctx": false}}}}



=== TEST 6: no token
--- request
GET /hello
--- error_code: 401
--- response_body
{"message":"Missing JWT token in request"}
--- response_headers
WWW-Authenticate: Bearer realm="jwt"



=== TEST 7: not a JWT
--- request
GET /hello
--- more_headers
Authorization: Bearer not-a-jwt
--- error_code: 401
--- response_body
{"message":"JWT token invalid"}
--- error_log
JWT token invalid: invalid jwt string



=== TEST 8: no key claim
--- request
GET /hello
--- more_headers
Authorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.K6L6KINT1SpNpiqHMTTKovyBbTy_GRPeD2rQTmx3uGg
--- error_code: 401
--- response_body
{"message":"missing user key in JWT token"}



=== TEST 9: a key no consumer has
--- request
GET /hello
--- more_headers
Authorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJub2JvZHkifQ.1zfa537ezn38w5Q_60RwPGoFn8SioexZL-EZBlq8WSw
--- error_code: 401
--- response_body
{"message":"Invalid user key in JWT token"}



=== TEST 10: a valid token in the header, bare and with Bearer / bearer; the consumer named upstream
--- request eval
["GET /uri", "GET /uri", "GET /uri"]
--- more_headers eval
["Authorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6NDEwMjQ0NDgwMH0.Vvic3mhd6gbgARxkxqhMpPP3ztQv08bELL9zrsGED8o", "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6NDEwMjQ0NDgwMH0.Vvic3mhd6gbgARxkxqhMpPP3ztQv08bELL9zrsGED8o", "Authorization: bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6NDEwMjQ0NDgwMH0.Vvic3mhd6gbgARxkxqhMpPP3ztQv08bELL9zrsGED8o"]
--- response_body_like eval
["x-consumer-custom-id: cid-jack\nx-consumer-username: jack\n", "x-consumer-username: jack\n", "x-consumer-username: jack\n"]



=== TEST 11: a valid token in the query string, then in a cookie
--- request eval
["GET /hello?jwt=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6NDEwMjQ0NDgwMH0.Vvic3mhd6gbgARxkxqhMpPP3ztQv08bELL9zrsGED8o", "GET /hello"]
--- more_headers eval
["", "Cookie: jwt=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6NDEwMjQ0NDgwMH0.Vvic3mhd6gbgARxkxqhMpPP3ztQv08bELL9zrsGED8o"]
--- response_body eval
["hello world\n", "hello world\n"]



=== TEST 12: a wrong signature
--- request
GET /hello
--- more_headers
Authorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6NDEwMjQ0NDgwMH0.gmBZ2x2fwDVlC3AW-UGsm0KXcxborHbGRuGJv-LqbIA
--- error_code: 401
--- response_body
{"message":"failed to verify jwt"}
--- response_headers
WWW-Authenticate: Bearer realm="jwt"
--- error_log
failed to verify jwt: signature mismatch
--- no_error_log
eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6NDEwMjQ0NDgwMH0.gmBZ2x2fwDVlC3AW-UGsm0KXcxborHbGRuGJv-LqbIA



=== TEST 13: alg "none" is refused
--- request
GET /hello
--- more_headers
Authorization: eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJrZXkiOiJ1c2VyLWtleSJ9.
--- error_code: 401
--- response_body
{"message":"failed to verify jwt"}
--- error_log
failed to verify jwt: algorithm mismatch, expected HS256



=== TEST 14: an expired token
--- request
GET /hello
--- more_headers
Authorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6MTAwMH0.RJFko9tOIIHFQ34wSVFLX3Kr7X9eNbS2qNo1CLETgoQ
--- error_code: 401
--- response_body
{"message":"failed to verify jwt"}
--- error_log
failed to verify jwt: 'exp' claim expired at Thu, 01 Jan 1970 00:16:40 GMT



=== TEST 15: a token not valid yet (nbf)
--- request
GET /hello
--- more_headers
Authorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsIm5iZiI6NDEwMjQ0NDgwMH0.11isKE8c0ScPA_VIKBQOxTx8EH45sxud58L0zjkMKgo
--- error_code: 401
--- response_body
{"message":"failed to verify jwt"}
--- error_log
failed to verify jwt: 'nbf' claim not valid until



=== TEST 16: exp that is not a number
--- request
GET /hello
--- more_headers
Authorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6InRvbW9ycm93In0.BKOYvXgbBeP3nz2bw4DF6KGMFOhzFGF_y7bDwDwUc_8
--- error_code: 401
--- error_log
failed to verify jwt: claim exp is not a number



=== TEST 17: a token without exp passes by default
--- request
GET /hello
--- more_headers
Authorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSJ9._7aoTZdzQDT0r9swHTcHb3nsujexcGjSTU-LRzTRVyY
--- response_body
hello world



=== TEST 18: claims_to_verify makes exp required
--- admin
PUT /apisix/admin/routes/2
{
    "uri": "/hello",
    "host": "claims.test",
    "plugins": {"jwt-auth": {"claims_to_verify": ["exp"]}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 201



=== TEST 19: without exp: refused; with exp: accepted
--- request eval
["GET /hello", "GET /hello"]
--- more_headers eval
["Host: claims.test\nAuthorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSJ9._7aoTZdzQDT0r9swHTcHb3nsujexcGjSTU-LRzTRVyY", "Host: claims.test\nAuthorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6NDEwMjQ0NDgwMH0.Vvic3mhd6gbgARxkxqhMpPP3ztQv08bELL9zrsGED8o"]
--- error_code eval
[401, 200]
--- error_log
failed to verify jwt: claim exp is missing



=== TEST 20: lifetime_grace_period lets an old exp pass
--- admin
PUT /apisix/admin/consumers
{"username": "grace", "plugins": {"jwt-auth": {"key": "grace-key", "secret": "grace-secret", "lifetime_grace_period": 2000000000}}}
--- error_code: 201



=== TEST 21: the expired token of the consumer with a grace period
--- request
GET /hello
--- more_headers
Authorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJncmFjZS1rZXkiLCJleHAiOjEwMDB9.jihDDgEmZmpCBN1wwKcPKWsyb_HY1E2m2PNALq0O41A
--- response_body
hello world



=== TEST 22: base64_secret
--- admin
PUT /apisix/admin/consumers
{"username": "b64", "plugins": {"jwt-auth": {"key": "b64-key", "secret": "c2VjcmV0LWJ5dGVzLWZvci1iNjQ=", "base64_secret": true}}}
--- error_code: 201



=== TEST 23: a token signed with the decoded secret
--- request
GET /uri
--- more_headers
Authorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJiNjQta2V5In0.29vZ3fnwELNxMKFSxgEUB2cRK2J3QlLan8-zj8h5nlQ
--- response_body_like
x-consumer-username: b64



=== TEST 24: RS256, ES256, PS256 and EdDSA consumers
--- admin
PUT /apisix/admin/consumers
{"username": "rsa", "plugins": {"jwt-auth": {"key": "rsa-key", "algorithm": "RS256", "public_key": ${{file t/certs/jwt/rsa.pub.pem}}}}}
PUT /apisix/admin/consumers
{"username": "ec", "plugins": {"jwt-auth": {"key": "ec-key", "algorithm": "ES256", "public_key": ${{file t/certs/jwt/ec.pub.pem}}}}}
PUT /apisix/admin/consumers
{"username": "ps", "plugins": {"jwt-auth": {"key": "ps-key", "algorithm": "PS256", "public_key": ${{file t/certs/jwt/rsa.pub.pem}}}}}
PUT /apisix/admin/consumers
{"username": "ed", "plugins": {"jwt-auth": {"key": "ed-key", "algorithm": "EdDSA", "public_key": ${{file t/certs/jwt/ed25519.pub.pem}}}}}
--- error_code eval
[201, 201, 201, 201]



=== TEST 25: tokens signed with the private keys
--- request eval
["GET /uri", "GET /uri", "GET /uri", "GET /uri"]
--- more_headers eval
["Authorization: eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJyc2Eta2V5In0.R6k-OpPAptBhe5-2doKj5peV6M5OkVV6MgpQ3SIaou0oYtA7zTe0jKQmZquVFXKpc3ziuVwfBTPeOS7hihs3ushHfGUSomixGuk7s-QCpEfijr61wTvHzM7b_j-mW9UcqIOJcMa5EiCsSEYT5-dsA_CFs113pNR_uFVtoQy_grHfmHSkgapGxh1tg7mIClW71huQHcOrFrHwr1OvIRBNn1v4JIemI1t5pdmiRmwPSolFJM8zIpkGw9LhG1yGftqWk_2ZP-z-jBfGFwbjAsUSTZIng44blp3ZBZtcDkE8G67K6vZC2YaqdJZJDdhCsdgobGI87TnTZ6wtRrI82obmaA", "Authorization: eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJlYy1rZXkifQ.MfzMfVPxz0K-ZXnyPRvIn_D60KnLYs3NE2HYverYAxRffr-MKaSidyRFy3qdQV4a0E9uDqmOaNitdmffwNOw7A", "Authorization: eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJwcy1rZXkifQ.QvkhLn0FOthO-ejr-yJ24dpbbz7AHam03ENSp33MsKvRCq4gfGefdBHnEyEnvqmclokQjTE3IipnkJrU22cMWgZgGVWOV59XXyMI_q2v_kSExpzvMj8dN0XGLSqMR6Yyc3nFttJqGNNXSu_26oUR0sA-qaVmZ53APRPMyi2fsskopuzP0X2rywgFup1x0ZneeOWXeqpiFiV7iGzoBDLuJcGFvc--ugERflMmZYpB94jNESuItWTGGtXETkmrQDnquqjMG_gon1E26FjnIVb2-tpvs5apY4ZtMqx-Vwosyh9VKLLFvdjWyvPAU2cwfKVqmDEUVXEjdar8AUNqxrIq8g", "Authorization: eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJlZC1rZXkifQ.QDrm8Yy-J18toRLkms7XmZ19lipHBV_aqXB2Dr0huDCK3xyy074K9Dzk26dQIdL5IntFDo6Jjf2mR5uUQa_cDw"]
--- response_body_like eval
["x-consumer-username: rsa\n", "x-consumer-username: ec\n", "x-consumer-username: ps\n", "x-consumer-username: ed\n"]



=== TEST 26: algorithm confusion: an HS256 token MAC'd with the RSA public key is refused
--- request
GET /hello
--- more_headers
Authorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJyc2Eta2V5In0.JshP9vSF3BPlL4KsH0bpMWA5MgKqAENulEovhNrhCbM
--- error_code: 401
--- response_body
{"message":"failed to verify jwt"}
--- error_log
failed to verify jwt: algorithm mismatch, expected RS256



=== TEST 27: key_claim_name
--- admin
PUT /apisix/admin/routes/3
{
    "uri": "/hello",
    "host": "iss.test",
    "plugins": {"jwt-auth": {"key_claim_name": "iss"}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 201



=== TEST 28: the key is read from iss
--- request eval
["GET /hello", "GET /hello"]
--- more_headers eval
["Host: iss.test\nAuthorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJ1c2VyLWtleSJ9.0zzklgfWsGHOU6CIUE61UJZ2vZSksP9JjIH60swcPsI", "Host: iss.test\nAuthorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6NDEwMjQ0NDgwMH0.Vvic3mhd6gbgARxkxqhMpPP3ztQv08bELL9zrsGED8o"]
--- error_code eval
[200, 401]



=== TEST 29: hide_credentials
--- admin
PUT /apisix/admin/routes/4
{
    "uris": ["/old_uri", "/print_request_received"],
    "host": "hide.test",
    "plugins": {"jwt-auth": {"hide_credentials": true}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 201



=== TEST 30: the header, the query argument and the cookie are removed
--- request eval
["GET /old_uri", "GET /print_request_received?a=1&jwt=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6NDEwMjQ0NDgwMH0.Vvic3mhd6gbgARxkxqhMpPP3ztQv08bELL9zrsGED8o", "GET /old_uri"]
--- more_headers eval
["Host: hide.test\nAuthorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6NDEwMjQ0NDgwMH0.Vvic3mhd6gbgARxkxqhMpPP3ztQv08bELL9zrsGED8o", "Host: hide.test", "Host: hide.test\nCookie: a=1; jwt=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6NDEwMjQ0NDgwMH0.Vvic3mhd6gbgARxkxqhMpPP3ztQv08bELL9zrsGED8o; b=2"]
--- response_body_like eval
["x-consumer-username: jack", "request_uri: /print_request_received\\?a=1\n", "cookie: a=1; b=2\n"]
--- response_body_unlike eval
["authorization", "eyJ", "eyJ"]



=== TEST 31: the anonymous consumer
--- admin
PUT /apisix/admin/consumers
{"username": "anon"}
PUT /apisix/admin/routes/5
{
    "uri": "/uri",
    "host": "anon.test",
    "plugins": {"jwt-auth": {"anonymous_consumer": "anon"}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code eval
[201, 201]



=== TEST 32: a bad token falls back to the anonymous consumer, a good one is jack
--- request eval
["GET /uri", "GET /uri"]
--- more_headers eval
["Host: anon.test\nAuthorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6NDEwMjQ0NDgwMH0.gmBZ2x2fwDVlC3AW-UGsm0KXcxborHbGRuGJv-LqbIA", "Host: anon.test\nAuthorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJ1c2VyLWtleSIsImV4cCI6NDEwMjQ0NDgwMH0.Vvic3mhd6gbgARxkxqhMpPP3ztQv08bELL9zrsGED8o"]
--- response_body_like eval
["x-consumer-username: anon\n", "x-consumer-username: jack\n"]



=== TEST 33: the key of another consumer is refused
--- admin
PUT /apisix/admin/consumers
{"username": "rose", "plugins": {"jwt-auth": {"key": "user-key", "secret": "other"}}}
--- error_code: 400
--- response_body_json
{"error_msg": "duplicate key of plugin jwt-auth found with consumer: jack"}



=== TEST 34: a jwt-auth credential
--- admin
PUT /apisix/admin/consumers/jack/credentials/jwt-1
{"plugins": {"jwt-auth": {"key": "cred-jwt-key", "secret": "cred-secret"}}}
--- error_code: 201



=== TEST 35: the credential's token names jack and the credential
--- request
GET /uri
--- more_headers
Authorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJjcmVkLWp3dC1rZXkifQ.7AjnRCUli2m6oUn336WfLdseK1NG_ronyLCux6nnjS0
--- response_body_like
x-consumer-username: jack
x-credential-identifier: jwt-1
