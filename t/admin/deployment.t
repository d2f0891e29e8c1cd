# Admin keys at start, and the roles: control_plane serves the Admin API only.

__DATA__

=== TEST 1: an empty admin key is replaced by a random one, written back, never printed
--- exec
d=$PREFIX/kg; mkdir -p $d/conf $d/logs
cat > $d/conf/config.yaml <<YAML
apisix:
  node_listen: 1985
  enable_control: false
deployment:
  admin:
    admin_key:
      - name: admin
        key: ''
        role: admin
    admin_listen: {ip: 127.0.0.1, port: 9181}
  etcd:
    host: ["$GATEWAY_TEST_ETCD"]
nginx_config:
  worker_processes: 1
YAML
$GATEWAY start -p $d | sed "s#$d#PREFIX#"
key=$(sed -n 's/^ *key: *\([A-Za-z]*\)$/\1/p' $d/conf/config.yaml)
echo "key length: ${#key}"
curl -s -o /dev/null -w 'without: %{http_code}\n' http://127.0.0.1:9181/apisix/admin/routes
curl -s -o /dev/null -w 'with: %{http_code}\n' -H "X-API-KEY: $key" http://127.0.0.1:9181/apisix/admin/routes
grep -c "$key" $d/logs/error.log
$GATEWAY stop -p $d
--- response_body
generated a random admin key for 'admin' and wrote it to PREFIX/conf/config.yaml
key length: 32
without: 401
with: 200
0



=== TEST 2: a well-known published key is refused on a listener that is not loopback
--- exec
d=$PREFIX/wk; mkdir -p $d/conf $d/logs
cat > $d/conf/config.yaml <<YAML
apisix:
  node_listen: 1985
  enable_control: false
deployment:
  admin:
    admin_key:
      - {name: admin, key: edd1c9f034335f136f87ad84b625c8f1, role: admin}
    admin_listen: {ip: 0.0.0.0, port: 9181}
  etcd:
    host: ["$GATEWAY_TEST_ETCD"]
YAML
$GATEWAY start -p $d
--- exit_code: 1
--- response_body_like
well-known published key; it is refused on the Admin API listener 0.0.0.0



=== TEST 3: control_plane: the Admin API answers, no proxy listener is opened
--- exec
d=$PREFIX/cp; mkdir -p $d/conf $d/logs
cat > $d/conf/config.yaml <<YAML
apisix:
  node_listen: 1985
  enable_control: false
deployment:
  role: control_plane
  role_control_plane:
    config_provider: etcd
  admin:
    admin_key: null
    admin_listen: {ip: 127.0.0.1, port: 9181}
  etcd:
    host: ["$GATEWAY_TEST_ETCD"]
nginx_config:
  worker_processes: 1
YAML
$GATEWAY start -p $d || exit 1
curl -s -o /dev/null -w 'admin: %{http_code}\n' -X PUT http://127.0.0.1:9181/apisix/admin/routes/cp \
  -d '{"uri": "/hello", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}'
curl -s -o /dev/null -w 'proxy: %{http_code}\n' http://127.0.0.1:1985/hello
$GATEWAY stop -p $d
--- response_body
admin: 201
proxy: 000



=== TEST 4: data_plane with etcd: serves what the control plane wrote, has no Admin API
--- exec
d=$PREFIX/dp; mkdir -p $d/conf $d/logs
cat > $d/conf/config.yaml <<YAML
apisix:
  node_listen: 1986
  enable_control: false
deployment:
  role: data_plane
  role_data_plane:
    config_provider: etcd
  admin:
    admin_listen: {ip: 127.0.0.1, port: 9182}
  etcd:
    host: ["$GATEWAY_TEST_ETCD"]
nginx_config:
  worker_processes: 1
YAML
$GATEWAY start -p $d || exit 1
curl -s http://127.0.0.1:1986/hello
curl -s -o /dev/null -w 'admin: %{http_code}\n' http://127.0.0.1:9182/apisix/admin/routes
$GATEWAY stop -p $d
--- response_body
hello world
admin: 000
