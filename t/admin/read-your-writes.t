# A write is answered only once the answering worker serves it, and the others follow at once:
# a request right after each write, on a new connection to any of 4 workers, sees it.
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
