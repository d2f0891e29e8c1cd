# etcd going away and coming back, with a private etcd (the session's must stay up for the
# other files): the gateway keeps serving, resumes its watch, and boots from the persisted
# snapshot when etcd is down at start, converging once it returns. One exec block drives a
# gateway of its own (prefix $PREFIX/gw, port 1984) so it can also restart etcd.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: etcd restarts under a running gateway, then is down while the gateway starts
--- exec
KV="$PYTHON $REPO/t/etcd/kv.py"
set -- $($PYTHON -c 'import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
ETCD=http://127.0.0.1:$1; PEER=http://127.0.0.1:$2; ETCD_PID=
start_etcd() {
  env -u ETCD_DATA_DIR etcd --name priv --data-dir $PREFIX/etcd-data \
    --listen-client-urls $ETCD --advertise-client-urls $ETCD --listen-peer-urls $PEER \
    --initial-advertise-peer-urls $PEER --initial-cluster priv=$PEER --log-level error \
    >> $PREFIX/etcd.log 2>&1 &
  ETCD_PID=$!
  for i in $(seq 200); do curl -sf $ETCD/health > /dev/null && return 0; sleep 0.05; done
  echo "private etcd did not start"; return 1
}
stop_etcd() { kill $ETCD_PID; wait $ETCD_PID 2> /dev/null; ETCD_PID=; }
trap '$GATEWAY stop -p $PREFIX/gw > /dev/null 2>&1; [ -n "$ETCD_PID" ] && stop_etcd' EXIT
route() { echo '{"id":"'$1'","uri":"'$2'","upstream":{"nodes":{"127.0.0.1:1980":1},"type":"roundrobin"}}'; }

start_etcd || exit 1
$KV --etcd $ETCD put /priv/routes/1 "$(route 1 /hello)" > /dev/null
mkdir -p $PREFIX/gw/logs
cat > $PREFIX/gw/config.yaml <<YAML
apisix: {node_listen: 1984, enable_admin: false}
deployment:
  role: traditional
  role_traditional: {config_provider: etcd}
  etcd: {host: ["$ETCD"], prefix: /priv}
nginx_config: {worker_processes: 1, error_log_level: info}
YAML
$GATEWAY start -p $PREFIX/gw -c $PREFIX/gw/config.yaml || exit 1
$KV wait GET /hello 200

echo "-- etcd stops: still serving"
stop_etcd
$KV wait GET /hello 200
echo "-- etcd is back: the watch resumes"
start_etcd || exit 1
$KV --etcd $ETCD put /priv/routes/2 "$(route 2 /hello1)" > /dev/null
$KV wait GET /hello1 200
grep -q "etcd reachable again" $PREFIX/gw/logs/error.log && echo "reconnection logged"

echo "-- etcd down at start: the persisted snapshot"
$GATEWAY stop -p $PREFIX/gw || exit 1
stop_etcd
$GATEWAY start -p $PREFIX/gw -c $PREFIX/gw/config.yaml || exit 1
$KV wait GET /hello1 200
grep -q "serving the snapshot persisted in" $PREFIX/gw/logs/error.log && echo "start from the snapshot logged"
echo "-- etcd returns: converges"
start_etcd || exit 1
$KV --etcd $ETCD del /priv/routes/1
$KV wait GET /hello 404
--- response_body
served: GET /hello -> 200
-- etcd stops: still serving
served: GET /hello -> 200
-- etcd is back: the watch resumes
served: GET /hello1 -> 200
reconnection logged
-- etcd down at start: the persisted snapshot
served: GET /hello1 -> 200
start from the snapshot logged
-- etcd returns: converges
served: GET /hello -> 404



=== TEST 2: etcd with authentication: the gateway logs in, watches, and never logs the password
--- exec
KV="$PYTHON $REPO/t/etcd/kv.py"
set -- $($PYTHON -c 'import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
ETCD=http://127.0.0.1:$1; PEER=http://127.0.0.1:$2
env -u ETCD_DATA_DIR etcd --name auth --data-dir $PREFIX/etcd-auth \
  --listen-client-urls $ETCD --advertise-client-urls $ETCD --listen-peer-urls $PEER \
  --initial-advertise-peer-urls $PEER --initial-cluster auth=$PEER --log-level error \
  >> $PREFIX/etcd-auth.log 2>&1 &
ETCD_PID=$!
trap '$GATEWAY stop -p $PREFIX/gw2 > /dev/null 2>&1; kill $ETCD_PID; wait $ETCD_PID 2> /dev/null' EXIT
for i in $(seq 200); do curl -sf $ETCD/health > /dev/null && break; sleep 0.05; done
$KV --etcd $ETCD enable_auth 'pw-N0t-In-Logs'
AUTH="--etcd $ETCD --user root --password pw-N0t-In-Logs"
$KV $AUTH put /sec/routes/1 '{"id":"1","uri":"/hello","upstream":{"nodes":{"127.0.0.1:1980":1},"type":"roundrobin"}}' > /dev/null
mkdir -p $PREFIX/gw2/logs
cat > $PREFIX/gw2/config.yaml <<YAML
apisix: {node_listen: 1984, enable_admin: false}
deployment:
  role: traditional
  role_traditional: {config_provider: etcd}
  etcd: {host: ["$ETCD"], prefix: /sec, user: root, password: pw-N0t-In-Logs}
nginx_config: {worker_processes: 1, error_log_level: debug}
YAML
$GATEWAY init_etcd -p $PREFIX/gw2 -c $PREFIX/gw2/config.yaml || exit 1
$KV $AUTH get /sec/routes/
$GATEWAY start -p $PREFIX/gw2 -c $PREFIX/gw2/config.yaml || exit 1
$KV wait GET /hello 200
$KV $AUTH put /sec/routes/2 '{"id":"2","uri":"/hello1","upstream":{"nodes":{"127.0.0.1:1980":1},"type":"roundrobin"}}' > /dev/null
$KV wait GET /hello1 200
echo "password in logs: $(cat $PREFIX/gw2/logs/*.log $PREFIX/gw2/logs/*.json 2> /dev/null | grep -c pw-N0t-In-Logs)"
--- response_body
init_dir
served: GET /hello -> 200
served: GET /hello1 -> 200
password in logs: 0
