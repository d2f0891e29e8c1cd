# apisix.trusted_addresses: a trusted client's X-Forwarded-* reach the upstream (For
# appended to), an untrusted client's are replaced by the gateway's own values.
use t::APISIX 'no_plan';
repeat_each(1);
no_shuffle();
run_tests;

__DATA__

=== TEST 1: trusted (the harness default trusts 127.0.0.1): kept, For appended
--- apisix_yaml
routes:
  - id: uri
    uri: /old_uri
    upstream:
      nodes:
        "127.0.0.1:1980": 1
#END
--- request
GET /old_uri
--- more_headers
X-Forwarded-For: 10.0.0.1
X-Forwarded-Proto: https
X-Forwarded-Host: example.com
X-Forwarded-Port: 443
--- response_body_like
uri: /old_uri
(?s).*x-forwarded-for: 10\.0\.0\.1, 127\.0\.0\.1
.*x-forwarded-host: example\.com
.*x-forwarded-port: 443
.*x-forwarded-proto: https
.*x-real-ip: 127\.0\.0\.1



=== TEST 2: trusted by CIDR
--- extra_yaml_config
apisix:
  trusted_addresses: ["10.0.0.0/8", "127.0.0.0/24"]
--- request
GET /old_uri
--- more_headers
X-Forwarded-For: 10.0.0.1
X-Forwarded-Proto: https
--- response_body_like
(?s).*x-forwarded-for: 10\.0\.0\.1, 127\.0\.0\.1
.*x-forwarded-proto: https



=== TEST 3: untrusted: every incoming X-Forwarded-* replaced by the gateway's own
--- extra_yaml_config
apisix:
  trusted_addresses: ["10.0.0.0/8"]
--- request
GET /old_uri
--- more_headers
X-Forwarded-For: 10.0.0.1
X-Forwarded-Proto: https
X-Forwarded-Host: example.com
X-Forwarded-Port: 443
--- response_body_like
uri: /old_uri
(?s).*x-forwarded-for: 127\.0\.0\.1
.*x-forwarded-host: localhost
.*x-forwarded-port: 1984
.*x-forwarded-proto: http
.*x-real-ip: 127\.0\.0\.1
--- response_body_unlike
10\.0\.0\.1|example\.com|443|https



=== TEST 4: trusted_addresses unset (config-default: null) trusts nobody
--- extra_yaml_config
apisix:
  trusted_addresses: null
--- request
GET /old_uri
--- more_headers
X-Forwarded-For: 10.0.0.1
X-Forwarded-Host: example.com
--- response_body_like
(?s).*x-forwarded-for: 127\.0\.0\.1
.*x-forwarded-host: localhost
--- response_body_unlike
10\.0\.0\.1|example\.com
