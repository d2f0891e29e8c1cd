# prometheus: APISIX's metric names and labels, summed over two workers, scraped from the
# export server (127.0.0.1:9091, /apisix/prometheus/metrics; the harness's default config
# turns it off, so every block turns it on).
use t::APISIX 'no_plan';
repeat_each(1);
workers(2);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: a route with prometheus, one without, one answered by a plugin
--- extra_yaml_config
plugin_attr:
  prometheus:
    enable_export_server: true
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "plugins": {"prometheus": {}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}, "type": "roundrobin"}}
PUT /apisix/admin/routes/2
{"uri": "/hello1", "upstream": {"nodes": {"127.0.0.1:1980": 1}, "type": "roundrobin"}}
PUT /apisix/admin/routes/3
{"uri": "/abort", "name": "aborted", "plugins": {"prometheus": {"prefer_name": true}, "fault-injection": {"abort": {"http_status": 403, "body": "no"}}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code eval
[201, 201, 201]



=== TEST 2: the schema: prefer_name is a boolean
--- extra_yaml_config
plugin_attr:
  prometheus:
    enable_export_server: true
--- admin
PUT /apisix/admin/routes/9
{"uri": "/x", "plugins": {"prometheus": {"prefer_name": "yes"}}, "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
--- error_code: 400
--- response_body_json
{"error_msg": "failed to check the configuration of plugin prometheus err: property \"prefer_name\" validation failed: wrong type: expected boolean, got string"}



=== TEST 3: requests over several connections (both workers)
--- extra_yaml_config
plugin_attr:
  prometheus:
    enable_export_server: true
--- request eval
["GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello", "GET /hello1", "GET /abort", "GET /abort"]
--- error_code eval
[200, 200, 200, 200, 200, 200, 200, 403, 403]



=== TEST 4: apisix_http_status counts every worker's requests, labels as APISIX
--- extra_yaml_config
plugin_attr:
  prometheus:
    enable_export_server: true
--- exec
# (series come from both workers' files in no fixed order)
curl -s http://127.0.0.1:9091/apisix/prometheus/metrics | grep -E '^apisix_http_status\{' | sort
--- response_body
apisix_http_status{code="200",route="1",matched_uri="/hello",matched_host="",service="",consumer="",node="127.0.0.1",request_type="traditional_http",request_llm_model="",llm_model="",response_source="upstream"} 6
apisix_http_status{code="403",route="aborted",matched_uri="/abort",matched_host="",service="",consumer="",node="",request_type="traditional_http",request_llm_model="",llm_model="",response_source="apisix"} 2



=== TEST 5: apisix_http_latency: request, upstream and apisix histograms with APISIX's buckets
--- extra_yaml_config
plugin_attr:
  prometheus:
    enable_export_server: true
--- exec
curl -s http://127.0.0.1:9091/apisix/prometheus/metrics > m.txt
grep -c '^apisix_http_latency_bucket{type="request",route="1",' m.txt
grep -E '^apisix_http_latency_count\{' m.txt | sort
grep -E '^# TYPE apisix_http_latency ' m.txt
grep -o 'apisix_http_latency_bucket{type="upstream",route="1",[^}]*le="[^"]*"' m.txt | grep -o 'le="[^"]*"' | paste -sd ' '
--- response_body
16
apisix_http_latency_count{type="apisix",route="1",service="",consumer="",node="127.0.0.1",request_type="traditional_http",request_llm_model="",llm_model=""} 6
apisix_http_latency_count{type="apisix",route="aborted",service="",consumer="",node="",request_type="traditional_http",request_llm_model="",llm_model=""} 2
apisix_http_latency_count{type="request",route="1",service="",consumer="",node="127.0.0.1",request_type="traditional_http",request_llm_model="",llm_model=""} 6
apisix_http_latency_count{type="request",route="aborted",service="",consumer="",node="",request_type="traditional_http",request_llm_model="",llm_model=""} 2
apisix_http_latency_count{type="upstream",route="1",service="",consumer="",node="127.0.0.1",request_type="traditional_http",request_llm_model="",llm_model=""} 6
# TYPE apisix_http_latency histogram
le="1" le="2" le="5" le="10" le="20" le="50" le="100" le="200" le="500" le="1000" le="2000" le="5000" le="10000" le="30000" le="60000" le="+Inf"



=== TEST 6: apisix_bandwidth: ingress and egress bytes (egress: the 6 bodies of "hello world\n")
--- extra_yaml_config
plugin_attr:
  prometheus:
    enable_export_server: true
--- exec
curl -s http://127.0.0.1:9091/apisix/prometheus/metrics > m.txt
grep -E '^apisix_bandwidth\{type="egress",route="1",' m.txt
grep -cE '^apisix_bandwidth\{type="ingress",route="1",service="",consumer="",node="127.0.0.1",request_type="traditional_http",request_llm_model="",llm_model=""\} [1-9][0-9]*$' m.txt
--- response_body
apisix_bandwidth{type="egress",route="1",service="",consumer="",node="127.0.0.1",request_type="traditional_http",request_llm_model="",llm_model=""} 72
1



=== TEST 7: node-wide gauges: node_info, etcd_reachable, connections, requests total
--- extra_yaml_config
plugin_attr:
  prometheus:
    enable_export_server: true
--- exec
sleep 1.2
curl -s http://127.0.0.1:9091/apisix/prometheus/metrics > m.txt
grep -E '^apisix_node_info\{' m.txt | sed -E 's/hostname="[^"]+"/hostname="H"/'
grep -E '^apisix_etcd_reachable ' m.txt
grep -oE '^apisix_nginx_http_current_connections\{state="[a-z]+"\}' m.txt | sort
grep -cE '^apisix_http_requests_total [1-9][0-9]*$' m.txt
grep -E '^# TYPE apisix_http_requests_total ' m.txt
--- response_body
apisix_node_info{hostname="H",version="3.18.0"} 1
apisix_etcd_reachable 1
apisix_nginx_http_current_connections{state="accepted"}
apisix_nginx_http_current_connections{state="active"}
apisix_nginx_http_current_connections{state="handled"}
apisix_nginx_http_current_connections{state="reading"}
apisix_nginx_http_current_connections{state="waiting"}
apisix_nginx_http_current_connections{state="writing"}
1
# TYPE apisix_http_requests_total gauge



=== TEST 8: only GET on the export URI; other paths 404
--- extra_yaml_config
plugin_attr:
  prometheus:
    enable_export_server: true
--- exec
curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:9091/apisix/prometheus/metrics
curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:9091/other
curl -s -o /dev/null -w '%{http_code}\n' -X POST http://127.0.0.1:9091/apisix/prometheus/metrics
--- response_body
200
404
404



=== TEST 9: upstream_status from the health checker
--- extra_yaml_config
plugin_attr:
  prometheus:
    enable_export_server: true
--- admin
PUT /apisix/admin/routes/4
{"uri": "/hello_", "plugins": {"prometheus": {}}, "upstream": {"nodes": {"127.0.0.1:1980": 1, "127.0.0.1:1970": 1}, "checks": {"active": {"http_path": "/status", "healthy": {"interval": 1, "successes": 1}, "unhealthy": {"interval": 1, "http_failures": 1, "tcp_failures": 1}}}}}
--- error_code: 201



=== TEST 10: a healthy and an unhealthy node
--- extra_yaml_config
plugin_attr:
  prometheus:
    enable_export_server: true
--- exec
for i in $(seq 1 60); do curl -s http://127.0.0.1:9091/apisix/prometheus/metrics | grep -q 'apisix_upstream_status{.*port="1970"} 0.0' && break; sleep 0.1; done
curl -s http://127.0.0.1:9091/apisix/prometheus/metrics | grep -E '^apisix_upstream_status\{' | sort
--- response_body
apisix_upstream_status{name="/apisix/routes/4",ip="127.0.0.1",port="1970"} 0
apisix_upstream_status{name="/apisix/routes/4",ip="127.0.0.1",port="1980"} 1
--- ignore_error_log



=== TEST 11: counters survive a reload (HUP): the old workers' files still count
--- extra_yaml_config
plugin_attr:
  prometheus:
    enable_export_server: true
--- signal
HUP
--- exec
curl -s http://127.0.0.1:9091/apisix/prometheus/metrics | grep -E '^apisix_http_status\{code="200",route="1",' | grep -oE "[0-9.]+$"
--- response_body
6



=== TEST 12: metadata disabled_labels: set once, no route touched
--- extra_yaml_config
plugin_attr:
  prometheus:
    enable_export_server: true
--- admin
PUT /apisix/admin/plugin_metadata/prometheus
{"disabled_labels": {"http_status": ["route", "node", "matched_uri"], "bandwidth": ["node"]}}
--- error_code: 201



=== TEST 13: requests after the metadata change
--- extra_yaml_config
plugin_attr:
  prometheus:
    enable_export_server: true
--- request eval
["GET /hello", "GET /hello", "GET /hello", "GET /hello"]
--- error_code eval
[200, 200, 200, 200]



=== TEST 14: counted with those labels blank (APISIX keeps the labels, with "")
--- extra_yaml_config
plugin_attr:
  prometheus:
    enable_export_server: true
--- exec
curl -s http://127.0.0.1:9091/apisix/prometheus/metrics > m.txt
grep -E '^apisix_http_status\{code="200",route="",' m.txt
grep -E '^apisix_bandwidth\{type="egress",route="1",' m.txt | sort
grep -cE '^apisix_http_latency_count\{type="request",route="1",service="",consumer="",node="127.0.0.1",' m.txt
--- response_body
apisix_http_status{code="200",route="",matched_uri="",matched_host="",service="",consumer="",node="",request_type="traditional_http",request_llm_model="",llm_model="",response_source="upstream"} 4
apisix_bandwidth{type="egress",route="1",service="",consumer="",node="",request_type="traditional_http",request_llm_model="",llm_model=""} 48
apisix_bandwidth{type="egress",route="1",service="",consumer="",node="127.0.0.1",request_type="traditional_http",request_llm_model="",llm_model=""} 72
1



=== TEST 15: metadata removed
--- extra_yaml_config
plugin_attr:
  prometheus:
    enable_export_server: true
--- admin
DELETE /apisix/admin/plugin_metadata/prometheus
--- error_code: 200



=== TEST 16: prometheus not in the plugins list: no export listener
--- extra_yaml_config
plugins:
  - echo
plugin_attr:
  prometheus:
    enable_export_server: true
--- request
GET /hello
--- exec
curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:9091/apisix/prometheus/metrics
--- response_body eval
["hello world\n"]
--- exit_code: 7
