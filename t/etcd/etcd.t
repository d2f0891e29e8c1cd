# The etcd config source: list at start, live watch, failover, compaction, persisted snapshot.
# Every block uses its own prefix in the session's etcd, so files do not see each other's keys.
use t::APISIX 'no_plan';
repeat_each(1);
workers(2);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: init_etcd checks the version and writes the directory placeholders
--- extra_yaml_config
deployment: {role: traditional, role_traditional: {config_provider: etcd},
             etcd: {prefix: /apisix-etcd-t, watch_timeout: 1}}
--- exec
$GATEWAY init_etcd -p $PREFIX
$PYTHON $REPO/t/etcd/kv.py get /apisix-etcd-t/routes/
$PYTHON $REPO/t/etcd/kv.py get /apisix-etcd-t/consumer_groups/
$PYTHON $REPO/t/etcd/kv.py put /apisix-etcd-t/routes/1 '{"id":"1","uri":"/hello","upstream":{"nodes":{"127.0.0.1:1980":1},"type":"roundrobin"}}' > /dev/null
--- response_body
init_dir
init_dir



=== TEST 2: routes listed from etcd at start are served (placeholders are ignored quietly)
--- extra_yaml_config
deployment: {role: traditional, role_traditional: {config_provider: etcd},
             etcd: {prefix: /apisix-etcd-t, watch_timeout: 1}}
--- request
GET /hello
--- response_body
hello world
--- error_log
etcd config listed from /apisix-etcd-t/: 1 objects



=== TEST 3: a put while running is served on every worker
--- extra_yaml_config
deployment: {role: traditional, role_traditional: {config_provider: etcd},
             etcd: {prefix: /apisix-etcd-t, watch_timeout: 1}}
--- exec
$PYTHON $REPO/t/etcd/kv.py put /apisix-etcd-t/routes/2 '{"id":"2","uri":"/hello1","upstream":{"nodes":{"127.0.0.1:1980":1},"type":"roundrobin"}}' > /dev/null
$PYTHON $REPO/t/etcd/kv.py wait GET /hello1 200
--- request eval
["GET /hello1", "GET /hello1", "GET /hello1", "GET /hello"]
--- response_body eval
["hello1 world\n", "hello1 world\n", "hello1 world\n", "hello world\n"]



=== TEST 4: a delete while running is served too
--- extra_yaml_config
deployment: {role: traditional, role_traditional: {config_provider: etcd},
             etcd: {prefix: /apisix-etcd-t, watch_timeout: 1}}
--- exec
$PYTHON $REPO/t/etcd/kv.py del /apisix-etcd-t/routes/1
$PYTHON $REPO/t/etcd/kv.py wait GET /hello 404
--- request
GET /hello
--- error_code: 404
--- response_body
{"error_msg":"404 Route Not Found"}



=== TEST 5: a value that is not JSON, or not a valid route, is skipped and named in the log
--- extra_yaml_config
deployment: {role: traditional, role_traditional: {config_provider: etcd},
             etcd: {prefix: /apisix-etcd-t, watch_timeout: 1}}
--- exec
$PYTHON $REPO/t/etcd/kv.py put /apisix-etcd-t/routes/bad 'not json' > /dev/null
$PYTHON $REPO/t/etcd/kv.py put /apisix-etcd-t/routes/worse '{"id":"worse","uri":"/hello","bogus":1,"upstream":{"nodes":{"127.0.0.1:1980":1},"type":"roundrobin"}}' > /dev/null
$PYTHON $REPO/t/etcd/kv.py put /apisix-etcd-t/routes/3 '{"id":"3","uri":"/hello","upstream":{"nodes":{"127.0.0.1:1980":1},"type":"roundrobin"}}' > /dev/null
$PYTHON $REPO/t/etcd/kv.py wait GET /hello 200
--- request
GET /hello
--- response_body
hello world
--- error_log
etcd key /apisix-etcd-t/routes/bad skipped: invalid JSON
etcd key /apisix-etcd-t/routes/worse skipped: additional properties forbidden, found bogus



=== TEST 6: a watch revision compacted away makes the source list again and converge
--- extra_yaml_config
deployment: {role: traditional, role_traditional: {config_provider: etcd},
             etcd: {prefix: /apisix-etcd-t, watch_timeout: 1}}
--- exec
# writes outside the prefix move the revision past what the watcher saw; the watch is
# re-opened every second (watch_timeout: 1) from its last revision, which is now gone
for i in 1 2 3; do $PYTHON $REPO/t/etcd/kv.py put /elsewhere-etcd-t/k$i v > /dev/null; done
$PYTHON $REPO/t/etcd/kv.py compact
for i in $(seq 100); do grep -q "listing the prefix again" logs/error.log && break; sleep 0.1; done
$PYTHON $REPO/t/etcd/kv.py del /apisix-etcd-t/routes/bad
$PYTHON $REPO/t/etcd/kv.py del /apisix-etcd-t/routes/worse
$PYTHON $REPO/t/etcd/kv.py put /apisix-etcd-t/routes/5 '{"id":"5","uri":"/hello_chunked","upstream":{"nodes":{"127.0.0.1:1980":1},"type":"roundrobin"}}' > /dev/null
$PYTHON $REPO/t/etcd/kv.py wait GET /hello_chunked 200
--- request
GET /hello1
--- response_body
hello1 world
--- error_log
revision compacted
listing the prefix again
--- timeout: 15



=== TEST 7: a dead endpoint listed first does not stop start-up
--- extra_yaml_config
deployment: {role: traditional, role_traditional: {config_provider: etcd},
             etcd: {prefix: /apisix-etcd-t, watch_timeout: 1,
                   host: ["http://127.0.0.1:1", "${{GATEWAY_TEST_ETCD}}"]}}
--- request
GET /hello1
--- response_body
hello1 world



=== TEST 8: a second gateway on the same etcd sees the first one's config and later writes
--- extra_yaml_config
deployment: {role: traditional, role_traditional: {config_provider: etcd},
             etcd: {prefix: /apisix-etcd-t, watch_timeout: 1}}
--- exec
cat > $PREFIX/conf/second.yaml <<YAML
apisix:
  node_listen: 1985
  enable_admin: false
  enable_control: false
  ssl: {enable: false}   # the harness's gateway has 9443
deployment:
  role: traditional
  role_traditional:
    config_provider: etcd
  etcd:
    host: ["$GATEWAY_TEST_ETCD"]
    prefix: /apisix-etcd-t
nginx_config:
  worker_processes: 1
YAML
mkdir -p $PREFIX/second/logs
$GATEWAY start -p $PREFIX/second -c $PREFIX/conf/second.yaml || exit 1
curl -s http://127.0.0.1:1985/hello1
$PYTHON $REPO/t/etcd/kv.py put /apisix-etcd-t/routes/4 '{"id":"4","uri":"/uri","upstream":{"nodes":{"127.0.0.1:1980":1},"type":"roundrobin"}}' > /dev/null
$PYTHON $REPO/t/etcd/kv.py wait GET /uri 200
for i in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:1985/uri)" = 200 ] && break
  sleep 0.05
done
curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:1985/uri
$GATEWAY stop -p $PREFIX/second
--- response_body
hello1 world
served: GET /uri -> 200
200



=== TEST 9: with etcd unreachable at start, the persisted snapshot is served and the log says so
--- extra_yaml_config
deployment: {role: traditional, role_traditional: {config_provider: etcd},
             etcd: {prefix: /apisix-etcd-t, watch_timeout: 1,
                   host: ["http://127.0.0.1:1", "http://127.0.0.1:2"]}}
--- request eval
["GET /hello1", "GET /hello"]
--- response_body eval
["hello1 world\n", "hello world\n"]
--- error_log
etcd unreachable at start-up
serving the snapshot persisted in



=== TEST 10: init_etcd refuses when most endpoints are down
--- yaml_config
apisix:
  node_listen: 1984
  enable_admin: false
deployment:
  role: traditional
  etcd:
    host:
      - "http://127.0.0.1:1"
      - "http://127.0.0.1:2"
      - "${{GATEWAY_TEST_ETCD}}"
    prefix: /apisix-etcd-t
--- exec
$GATEWAY init_etcd -p $PREFIX
--- exit_code: 1
--- response_body_like
only 1 of 3 etcd endpoints are healthy



=== TEST 11: HUP reload keeps the etcd config (the watch keeps running; no re-read of the file)
--- extra_yaml_config
deployment: {role: traditional, role_traditional: {config_provider: etcd},
             etcd: {prefix: /apisix-etcd-t, watch_timeout: 1}}
--- signal: HUP
--- request
GET /hello1
--- response_body
hello1 world
--- no_error_log
[error]
etcd unreachable
