# key-auth: consumers found by key (header first, then query), the identity headers sent
# upstream (client-sent ones stripped), hide_credentials, anonymous_consumer, credentials,
# consumer and consumer-group plugins merged over the route's, duplicate keys refused.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: a consumer with a key and a custom_id label
--- admin
PUT /apisix/admin/consumers
{"username": "jack", "labels": {"custom_id": "id-jack"}, "plugins": {"key-auth": {"key": "auth-one"}}}
--- error_code: 201
--- response_body_json_subset
{"value": {"username": "jack", "plugins": {"key-auth": {"key": "auth-one"}}}}



=== TEST 2: the key is encrypted at rest but shown in clear by the Admin API
--- admin
GET /apisix/admin/consumers/jack
--- response_body_json_subset
{"value": {"plugins": {"key-auth": {"key": "auth-one"}}}}



=== TEST 3: in etcd the key is stored encrypted (AES-128-CBC with the keyring, as APISIX)
--- exec
curl -s "$GATEWAY_TEST_ETCD/v3/kv/range" -d "{\"key\": \"$(printf %s /apisix/consumers/jack | base64 -w0)\"}" \
  | $PYTHON -c 'import base64, json, sys; kv = json.load(sys.stdin)["kvs"][0]; print(json.loads(base64.b64decode(kv["value"]))["plugins"]["key-auth"]["key"])'
--- response_body
4y+JvURBE6ZwRbbgaryrhg==



=== TEST 4: a route that needs key-auth
--- admin
PUT /apisix/admin/routes/1
{
    "uris": ["/hello", "/uri", "/print_request_received"],
    "plugins": {"key-auth": {}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 201
--- response_body_json_subset
{"value": {"plugins": {"key-auth": {"header": "apikey", "query": "apikey", "realm": "key", "hide_credentials": false}}}}



=== TEST 5: no key
--- request
GET /hello
--- error_code: 401
--- response_body
{"message":"Missing API key in request"}
--- response_headers
WWW-Authenticate: apikey realm="key"



=== TEST 6: a wrong key (never logged)
--- request
GET /hello
--- more_headers
apikey: not-a-key-123
--- error_code: 401
--- response_body
{"message":"Invalid API key in request"}
--- response_headers
WWW-Authenticate: apikey realm="key"
--- error_log
failed to find consumer: invalid api key
--- no_error_log
not-a-key-123



=== TEST 7: the right key in a header; the consumer is named to the upstream
--- request
GET /uri
--- more_headers
apikey: auth-one
--- response_body_like
x-consumer-custom-id: id-jack
x-consumer-username: jack
--- response_body_unlike
x-credential-identifier



=== TEST 8: the key in a header is kept for the upstream without hide_credentials
--- request
GET /uri
--- more_headers
apikey: auth-one
--- response_body_like
apikey: auth-one



=== TEST 9: the right key in the query string (several requests on one connection)
--- pipelined_requests eval
["GET /hello?apikey=auth-one", "GET /hello?apikey=auth-one"]
--- response_body eval
["hello world\n", "hello world\n"]



=== TEST 10: the header is checked first: a wrong header key fails even with a good query key
--- request
GET /hello?apikey=auth-one
--- more_headers
apikey: wrong
--- error_code: 401
--- response_body
{"message":"Invalid API key in request"}



=== TEST 11: identity headers sent by the client never reach the upstream
--- request
GET /uri
--- more_headers
apikey: auth-one
X-Consumer-Username: admin
X-Credential-Identifier: forged
X-Consumer-Custom-ID: forged-id
--- response_body_like
x-consumer-custom-id: id-jack
x-consumer-username: jack
--- response_body_unlike
(admin|forged)



=== TEST 12: the key never reaches the error log
--- request
GET /hello
--- more_headers
apikey: auth-one
--- no_error_log
auth-one



=== TEST 13: a second consumer with the same key is refused
--- admin
PUT /apisix/admin/consumers
{"username": "rose", "plugins": {"key-auth": {"key": "auth-one"}}}
--- error_code: 400
--- response_body_json
{"error_msg": "duplicate key of plugin key-auth found with consumer: jack"}



=== TEST 14: a credential of jack with its own key
--- admin
PUT /apisix/admin/consumers/jack/credentials/cred-1
{"plugins": {"key-auth": {"key": "cred-key-1"}}}
--- error_code: 201



=== TEST 15: the credential's key names jack and the credential
--- request
GET /uri
--- more_headers
apikey: cred-key-1
--- response_body_like
x-consumer-custom-id: id-jack
x-consumer-username: jack
x-credential-identifier: cred-1



=== TEST 16: another consumer cannot take the credential's key
--- admin
PUT /apisix/admin/consumers
{"username": "rose", "plugins": {"key-auth": {"key": "cred-key-1"}}}
--- error_code: 400
--- response_body_json
{"error_msg": "duplicate key of plugin key-auth found with credential: cred-1 of consumer: jack"}



=== TEST 17: hide_credentials, custom header and query names, a realm
--- admin
PUT /apisix/admin/routes/2
{
    "uris": ["/old_uri", "/print_request_received"],
    "host": "hide.test",
    "plugins": {"key-auth": {"header": "X-Key", "query": "k", "hide_credentials": true, "realm": "mine"}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 201



=== TEST 18: hidden from the headers
--- request
GET /old_uri
--- more_headers
Host: hide.test
X-Key: auth-one
--- response_body_like
x-consumer-username: jack
--- response_body_unlike
(x-key|auth-one)



=== TEST 19: hidden from the query string, other arguments kept
--- request
GET /print_request_received?a=1&k=auth-one&b=2
--- more_headers
Host: hide.test
--- response_body_like
request_uri: /print_request_received\?a=1&b=2
--- response_body_unlike
auth-one



=== TEST 20: the realm of the challenge
--- request
GET /old_uri
--- more_headers
Host: hide.test
--- error_code: 401
--- response_headers
WWW-Authenticate: apikey realm="mine"



=== TEST 21: an anonymous consumer that does not exist
--- admin
PUT /apisix/admin/routes/3
{
    "uri": "/uri",
    "host": "anon.test",
    "plugins": {"key-auth": {"anonymous_consumer": "anonymous"}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 201



=== TEST 22: authentication fails and the anonymous consumer is missing
--- request
GET /uri
--- more_headers
Host: anon.test
--- error_code: 401
--- response_body
{"message":"Invalid user authorization"}
--- response_headers
WWW-Authenticate: apikey realm="key"
--- error_log
key-auth failed to authenticate the request, code: 401. error: failed to get anonymous consumer anonymous



=== TEST 23: the anonymous consumer
--- admin
PUT /apisix/admin/consumers
{"username": "anonymous", "labels": {"custom_id": "anon"}}
--- error_code: 201



=== TEST 24: no key: the anonymous consumer; a good key: jack
--- request eval
["GET /uri", "GET /uri?apikey=auth-one"]
--- more_headers
Host: anon.test
--- response_body_like eval
["x-consumer-custom-id: anon\nx-consumer-username: anonymous\n", "x-consumer-username: jack\n"]



=== TEST 25: a consumer group whose plugins join the route's
--- admin
PUT /apisix/admin/consumer_groups/company_a
{"plugins": {"echo": {"before_body": "group\n"}, "proxy-rewrite": {"headers": {"set": {"X-Group": "a"}}}}}
--- error_code: 201



=== TEST 26: a consumer in the group with its own echo, one without, and a route with echo
--- admin
PUT /apisix/admin/consumers
{"username": "tom", "group_id": "company_a", "plugins": {"key-auth": {"key": "tom-key"}, "echo": {"before_body": "consumer\n"}}}
PUT /apisix/admin/consumers
{"username": "ann", "group_id": "company_a", "plugins": {"key-auth": {"key": "ann-key"}}}
PUT /apisix/admin/routes/4
{
    "uri": "/uri",
    "host": "merge.test",
    "plugins": {"key-auth": {}, "echo": {"before_body": "route\n"}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code eval
[201, 201, 201]



=== TEST 27: consumer over consumer group over route; the group's new plugin ran its rewrite
--- request
GET /uri
--- more_headers
Host: merge.test
apikey: tom-key
--- response_body_like
^consumer
uri: /uri
.*x-consumer-username: tom
x-group: a
--- response_body_unlike
(route|group)\n



=== TEST 28: consumer group over route
--- request
GET /uri
--- more_headers
Host: merge.test
apikey: ann-key
--- response_body_like
^group
uri: /uri
.*x-consumer-username: ann
x-group: a
--- response_body_unlike
route\n



=== TEST 29: jack (no group, no plugins) gets the route's plugins only
--- request
GET /uri
--- more_headers
Host: merge.test
apikey: auth-one
--- response_body_like
^route
uri: /uri
--- response_body_unlike
(x-group|group\n)



=== TEST 30: a plugin only the consumer group has runs its rewrite phase (rewrite_in_consumer)
--- admin
PUT /apisix/admin/consumer_groups/blocked
{"plugins": {"fault-injection": {"abort": {"http_status": 403, "body": "blocked by group\n"}}}}
PUT /apisix/admin/consumers
{"username": "bob", "group_id": "blocked", "plugins": {"key-auth": {"key": "bob-key"}}}
--- error_code eval
[201, 201]



=== TEST 31: bob is stopped by his group's plugin, jack is not
--- request eval
["GET /hello?apikey=bob-key", "GET /hello?apikey=auth-one"]
--- error_code eval
[403, 200]
--- response_body eval
["blocked by group\n", "hello world\n"]



=== TEST 32: the consumer_name variable for later plugins (a _meta.filter)
--- admin
PUT /apisix/admin/routes/5
{
    "uri": "/uri",
    "host": "vars.test",
    "plugins": {
        "key-auth": {},
        "proxy-rewrite": {"headers": {"set": {"X-Vip": "yes"}}, "_meta": {"filter": [["consumer_name", "==", "jack"]]}}
    },
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
PUT /apisix/admin/routes/6
{
    "uri": "/uri",
    "host": "vars2.test",
    "plugins": {
        "key-auth": {},
        "proxy-rewrite": {"headers": {"set": {"X-Vip": "yes"}}, "_meta": {"filter": [["consumer_name", "==", "rose"]]}}
    },
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code eval
[201, 201]



=== TEST 33: proxy-rewrite (priority 1008) runs after key-auth (2500) and sees the consumer
--- request eval
["GET /uri?apikey=auth-one", "GET /uri?apikey=auth-one"]
--- more_headers eval
["Host: vars.test", "Host: vars2.test"]
--- response_body_like eval
["x-vip: yes", "x-consumer-username: jack"]
--- response_body_unlike eval
["x-nothing", "x-vip"]



=== TEST 34: keys in credentials and consumers go away with their objects
--- admin
DELETE /apisix/admin/consumers/jack/credentials/cred-1
--- error_code: 200



=== TEST 35: the deleted credential's key no longer works
--- request
GET /hello?apikey=cred-key-1
--- error_code: 401
--- response_body
{"message":"Invalid API key in request"}



=== TEST 36: a schema error in the route conf
--- admin
PUT /apisix/admin/routes/9
{
    "uri": "/hello",
    "plugins": {"key-auth": {"realm": "a\"b"}},
    "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
}
--- error_code: 400
--- response_body_like
failed to check the configuration of plugin key-auth err: property \\"realm\\" validation failed



=== TEST 37: a consumer conf without a key
--- admin
PUT /apisix/admin/consumers
{"username": "nokey", "plugins": {"key-auth": {}}}
--- error_code: 400
--- response_body_json
{"error_msg": "invalid plugins configuration: failed to check the configuration of plugin key-auth err: property \"key\" is required"}
