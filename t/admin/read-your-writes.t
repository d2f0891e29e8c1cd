# A write is answered only once every serving worker serves it: a request right after each
# write, on a new connection to any of 4 workers, sees it. A stopped worker holds the answer
# back until it has caught up; a worker that died does not.
workers(4);

__DATA__

=== TEST 1: the gateway runs with 4 workers
--- admin
GET /apisix/admin/routes
--- response_body_json
{"list": [], "total": 0}



=== TEST 2: 20 writes, each followed at once by a request through the proxy
--- exec
for i in $(seq 1 20); do
  curl -s -o /dev/null -X PUT http://127.0.0.1:9180/apisix/admin/routes/r$i \
    -d '{"uri": "/ryw/'$i'", "plugins": {"proxy-rewrite": {"uri": "/hello"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}'
  curl -s http://127.0.0.1:1984/ryw/$i
done | sort | uniq -c | sed 's/^ *//'
--- response_body
20 hello world



=== TEST 3: a write waits for a stopped worker, and answers once that worker serves it too
--- exec
w=$(pgrep -P "$(cat logs/gateway.pid)" | head -1)
kill -STOP "$w"
curl -s -o /dev/null -w '%{http_code}\n' -X PUT http://127.0.0.1:9180/apisix/admin/routes/stopped \
  -d '{"uri": "/stopped", "plugins": {"proxy-rewrite": {"uri": "/hello"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}' \
  > put.out &
put=$!
# the answer must not come while that worker cannot have applied the write (answering
# without it takes a few milliseconds); nothing to wait for but the time given to fail
sleep 1
test -s put.out && echo "answered while a worker was stopped"
kill -CONT "$w"
wait "$put"
cat put.out
for i in $(seq 1 12); do curl -s http://127.0.0.1:1984/stopped; done | sort | uniq -c | sed 's/^ *//'
--- response_body
201
12 hello world



=== TEST 4: a worker killed just before a write does not hold the write up
--- exec
kill -KILL "$(pgrep -P "$(cat logs/gateway.pid)" | head -1)"
curl -s -o /dev/null -w '%{http_code}\n' -X PUT http://127.0.0.1:9180/apisix/admin/routes/killed \
  -d '{"uri": "/killed", "plugins": {"proxy-rewrite": {"uri": "/hello"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}'
for i in $(seq 1 12); do curl -s http://127.0.0.1:1984/killed; done | sort | uniq -c | sed 's/^ *//'
--- response_body
201
12 hello world
--- no_error_log
not served by every worker
