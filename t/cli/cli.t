# bin/gateway verbs: version, test, start/stop, pid file handling, reload validation.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: version names the APISIX release we match
--- exec
$GATEWAY version
--- response_body_like
^gateway \d+\.\d+\.\d+ \(APISIX \d+\.\d+\.\d+ compatible\)$



=== TEST 2: test accepts a good configuration
--- apisix_yaml
routes:
  - uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- exec
$GATEWAY test -p $PREFIX
--- response_body
configuration test is successful



=== TEST 3: test names the offending key of a wrong type
--- yaml_config
apisix:
  node_listen:
    - 1984
    - "not a port"
--- exec
$GATEWAY test -p $PREFIX
--- exit_code: 1
--- response_body_like
^gateway: apisix\.node_listen\[1\]: expected



=== TEST 4: test names an unknown key
--- yaml_config
apisix:
  node_listen: 1984
  no_such_setting: true
--- exec
$GATEWAY test -p $PREFIX
--- exit_code: 1
--- response_body_like
apisix\.no_such_setting: unknown key



=== TEST 5: test reports YAML syntax errors with the line
--- yaml_config
apisix:
  node_listen: [1984
--- exec
$GATEWAY test -p $PREFIX
--- exit_code: 1
--- response_body_like
config\.yaml:\d+



=== TEST 6: test refuses an apisix.yaml without #END
--- apisix_yaml
routes:
  - uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
--- exec
$GATEWAY test -p $PREFIX
--- exit_code: 1
--- response_body_like
missing the final #END line



=== TEST 7: test refuses an invalid route in apisix.yaml
--- apisix_yaml
routes:
  - id: r1
    uri: /hello
    upstream_id: u1
    unknown_field: 1
#END
--- exec
$GATEWAY test -p $PREFIX
--- exit_code: 1
--- response_body_like
routes\[0\] \(id r1\) skipped: additional properties forbidden, found unknown_field



=== TEST 8: start, refuse a second start while the first runs, stop
--- apisix_yaml
routes:
  - uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- exec
$GATEWAY start -p $PREFIX && echo started
$GATEWAY start -p $PREFIX; echo "second start: $?"
$GATEWAY stop -p $PREFIX && echo stopped
test -e logs/gateway.pid || echo "pid file removed"
--- response_body_like
^started
gateway: gateway is already running \(master pid \d+\)
second start: 1
stopped
pid file removed
$



=== TEST 9: a stale pid file is cleaned at start
--- exec
echo 2147483 > logs/gateway.pid
$GATEWAY start -p $PREFIX && echo started
test "$(cat logs/gateway.pid)" != 2147483 && echo "pid file rewritten"
$GATEWAY stop -p $PREFIX && echo stopped
--- response_body
started
pid file rewritten
stopped



=== TEST 10: stop and quit without a running gateway fail with one line
--- exec
$GATEWAY stop -p $PREFIX; echo "stop: $?"
$GATEWAY quit -p $PREFIX; echo "quit: $?"
--- response_body_like
^gateway: gateway is not running \(no live pid in .*gateway\.pid\)
stop: 1
gateway: gateway is not running .*
quit: 1
$



=== TEST 11: a port already in use fails start with one clear line
--- exec
$GATEWAY start -p $PREFIX && echo first
mkdir -p second/conf second/logs && cp conf/* second/conf/
$GATEWAY start -p $PREFIX/second; echo "second: $?"
$GATEWAY stop -p $PREFIX && echo stopped
--- response_body_like
^first
gateway: gateway failed to start: cannot listen on 0\.0\.0\.0:1984: Address already in use
second: 1
stopped
$



=== TEST 12: reload refuses a bad config.yaml and the running gateway keeps serving
--- request
GET /hello
--- response_body
hello world



=== TEST 13: reload with a broken config.yaml
--- exec
cp conf/config.yaml conf/good.yaml
printf 'apisix:\n  node_listen: "nope"\n' > conf/config.yaml
$GATEWAY reload -p $PREFIX; echo "reload: $?"
cp conf/good.yaml conf/config.yaml
--- response_body_like
^gateway: apisix\.node_listen: expected .*
reload: 1
$



=== TEST 14: still serving with the old configuration
--- request
GET /hello
--- response_body
hello world



=== TEST 15: a HUP with a broken config.yaml keeps the running configuration
--- exec
cp conf/config.yaml conf/good.yaml
printf 'apisix:\n  node_listen: "nope"\n' > conf/config.yaml
offset=$(stat -c %s logs/error.log)
kill -HUP "$(cat logs/gateway.pid)"
for i in $(seq 200); do tail -c +$((offset + 1)) logs/error.log | grep -q "reload failed" && break; sleep 0.05; done
cp conf/good.yaml conf/config.yaml
--- error_log
reload failed, keeping the running configuration: apisix.node_listen



=== TEST 16: and it still serves
--- request
GET /hello
--- response_body
hello world



=== TEST 17: reload with a good config succeeds
--- exec
$GATEWAY reload -p $PREFIX; echo "reload: $?"
--- response_body
reload: 0



=== TEST 18: init_etcd says etcd is not configured in standalone mode
--- exec
$GATEWAY init_etcd -p $PREFIX
--- exit_code: 1
--- response_body_like
etcd is not configured



=== TEST 19: a worker that cannot boot stops the master instead of respawning forever
--- yaml_config
apisix:
  node_listen: 1984
deployment:
  role: data_plane
  role_data_plane:
    config_provider: yaml
nginx_config:
  http:
    access_log: /proc/no-such-dir/access.log
--- exec
$GATEWAY stop -p $PREFIX
$GATEWAY start -p $PREFIX; echo "start: $?"
test -e logs/gateway.pid || echo "no pid file"
--- response_body_like
gateway failed to start: a worker failed to boot .*
start: 1
no pid file
--- error_log
cannot open the access log /proc/no-such-dir/access.log



=== TEST 20: serving again
--- yaml_config
apisix:
  node_listen: 1984
deployment:
  role: data_plane
  role_data_plane:
    config_provider: yaml
--- request
GET /hello
--- response_body
hello world



=== TEST 21: a reload whose new workers cannot boot keeps the running workers and config
--- exec
cp conf/config.yaml conf/good.yaml
before=$(pgrep -P "$(cat logs/gateway.pid)" | sort | tr '\n' ' ')
printf 'apisix:\n  node_listen: 1984\ndeployment:\n  role: data_plane\n  role_data_plane:\n    config_provider: yaml\nnginx_config:\n  http:\n    access_log: /proc/no-such-dir/access.log\n' > conf/config.yaml
offset=$(stat -c %s logs/error.log)
kill -HUP "$(cat logs/gateway.pid)"
for i in $(seq 200); do tail -c +$((offset + 1)) logs/error.log | grep -q "reload failed" && break; sleep 0.05; done
cp conf/good.yaml conf/config.yaml
for i in $(seq 200); do test "$(pgrep -P "$(cat logs/gateway.pid)" | sort | tr '\n' ' ')" = "$before" && break; sleep 0.05; done
test "$(pgrep -P "$(cat logs/gateway.pid)" | sort | tr '\n' ' ')" = "$before" && echo "same workers"
curl -s http://127.0.0.1:1984/hello
--- response_body
same workers
hello world
--- error_log
reload failed, keeping the running configuration: a worker failed to boot



=== TEST 22: a later good reload still works
--- exec
$GATEWAY reload -p $PREFIX && echo reloaded
--- response_body
reloaded



=== TEST 23: -c uses another config file instead of conf/config.yaml
--- exec
printf 'apisix:\n  node_listen: [1984, "x"]\n' > other.yaml
$GATEWAY test -p $PREFIX -c $PREFIX/other.yaml; echo "bad: $?"
printf 'apisix:\n  node_listen: 1984\ndeployment:\n  role: data_plane\n  role_data_plane:\n    config_provider: yaml\n' > other.yaml
$GATEWAY test -p $PREFIX -c $PREFIX/other.yaml; echo "good: $?"
$GATEWAY test -p $PREFIX -c $PREFIX/missing.yaml; echo "missing: $?"
--- response_body_like
^gateway: apisix\.node_listen\[1\]: expected .*
bad: 1
configuration test is successful
good: 0
gateway: .*missing\.yaml.*
missing: 1
$
