# The Admin API with etcd: two nodes on one etcd see each other's writes; a reload that
# changes deployment.etcd reconnects.

__DATA__

=== TEST 1: a route written through this node's Admin API
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 201



=== TEST 2: a second node on the same etcd serves it, and its own write reaches the first
--- exec
cat > $PREFIX/conf/second.yaml <<YAML
apisix:
  node_listen: 1985
  enable_control: false
  ssl: {enable: false}   # the harness's gateway has 9443
deployment:
  admin:
    admin_key: null
    admin_listen: {ip: 127.0.0.1, port: 9181}
  etcd:
    host: ["$GATEWAY_TEST_ETCD"]
nginx_config:
  worker_processes: 1
YAML
mkdir -p $PREFIX/second/conf $PREFIX/second/logs
cp $PREFIX/conf/second.yaml $PREFIX/second/conf/config.yaml
$GATEWAY start -p $PREFIX/second || exit 1
curl -s http://127.0.0.1:1985/hello
curl -s -o /dev/null -w '%{http_code}\n' -X PUT http://127.0.0.1:9181/apisix/admin/routes/2 \
  -d '{"uri": "/status", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}'
$GATEWAY stop -p $PREFIX/second
--- response_body
hello world
201



=== TEST 3: the first node serves the second node's route
--- request
GET /status
--- response_body
ok



=== TEST 4: reload with another etcd prefix: the node follows the new keyspace
--- exec
put() { curl -s "$GATEWAY_TEST_ETCD/v3/kv/put" -d "{\"key\": \"$(printf %s "$1" | base64 -w0)\", \"value\": \"$(printf %s "$2" | base64 -w0)\"}" >/dev/null; }
put /other/routes/9 '{"uri": "/hello1", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}'
sed -i 's#prefix: /apisix#prefix: /other#' conf/config.yaml
$GATEWAY reload -p $PREFIX || exit 1
for i in $(seq 1 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:1984/hello)
  [ "$code" = 404 ] && break; sleep 0.1
done
curl -s http://127.0.0.1:1984/hello1
curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:1984/hello
--- response_body
hello1 world
404



=== TEST 5: etcd over TLS with a client certificate (mTLS)
--- timeout: 60
--- exec
set -e
d=$PREFIX/etcd-tls; mkdir -p $d/conf $d/logs; cd $d
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > san.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=gateway 2>/dev/null
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2 2>/dev/null
read cport pport <<< "$($PYTHON -c 'import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')"
etcd --data-dir $d/data --name tls --listen-client-urls https://127.0.0.1:$cport \
  --advertise-client-urls https://127.0.0.1:$cport --listen-peer-urls http://127.0.0.1:$pport \
  --initial-advertise-peer-urls http://127.0.0.1:$pport --initial-cluster tls=http://127.0.0.1:$pport \
  --cert-file server.crt --key-file server.key --client-cert-auth --trusted-ca-file ca.crt \
  > etcd.log 2>&1 &
etcd_pid=$!
trap 'kill $etcd_pid 2>/dev/null' EXIT
for i in $(seq 1 100); do
  curl -s --cacert ca.crt --cert client.crt --key client.key https://127.0.0.1:$cport/version >/dev/null && break
  sleep 0.1
done
curl -s --cacert ca.crt --cert client.crt --key client.key https://127.0.0.1:$cport/v3/kv/put \
  -d "{\"key\": \"$(printf /apisix/routes/1 | base64 -w0)\", \"value\": \"$(printf '{"uri": "/hello", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}' | base64 -w0)\"}" >/dev/null
cat > conf/config.yaml <<YAML
apisix:
  node_listen: 1986
  enable_admin: false
  enable_control: false
  ssl: {enable: false}   # the harness's gateway has 9443
deployment:
  etcd:
    host: ["https://127.0.0.1:$cport"]
    tls:
      cert: $d/client.crt
      key: $d/client.key
      verify: false
nginx_config:
  worker_processes: 1
YAML
$GATEWAY start -p $d
curl -s http://127.0.0.1:1986/hello
$GATEWAY stop -p $d
--- response_body
hello world
