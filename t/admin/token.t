# Admin API access: admin keys and roles, the address allowlist.

__DATA__

=== TEST 1: no key when keys are configured
--- extra_yaml_config
deployment:
  admin:
    admin_key:
      - {name: admin, key: edd1c9f034335f136f87ad84b625c8f1, role: admin}
      - {name: viewer, key: 4054f7cf07e344346cd3f287985e76a2, role: viewer}
--- admin
GET /apisix/admin/routes
--- error_code: 401
--- response_body_json
{"error_msg": "failed to check token", "description": "missing apikey"}



=== TEST 2: a wrong key
--- extra_yaml_config
deployment:
  admin:
    admin_key:
      - {name: admin, key: edd1c9f034335f136f87ad84b625c8f1, role: admin}
      - {name: viewer, key: 4054f7cf07e344346cd3f287985e76a2, role: viewer}
--- admin
GET /apisix/admin/routes
--- more_headers
X-API-KEY: wrong
--- error_code: 401
--- response_body_json
{"error_msg": "failed to check token", "description": "wrong apikey"}



=== TEST 3: the admin key in the header, the query string and the cookie
--- extra_yaml_config
deployment:
  admin:
    admin_key:
      - {name: admin, key: edd1c9f034335f136f87ad84b625c8f1, role: admin}
      - {name: viewer, key: 4054f7cf07e344346cd3f287985e76a2, role: viewer}
--- admin
PUT /apisix/admin/routes/1
{"uri": "/hello", "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
GET /apisix/admin/routes/1?api_key=edd1c9f034335f136f87ad84b625c8f1
--- more_headers eval
["X-API-KEY: edd1c9f034335f136f87ad84b625c8f1", "X-Nothing: 1"]
--- error_code eval
[201, 200]



=== TEST 4: the key as the x_api_key cookie
--- extra_yaml_config
deployment:
  admin:
    admin_key:
      - {name: admin, key: edd1c9f034335f136f87ad84b625c8f1, role: admin}
      - {name: viewer, key: 4054f7cf07e344346cd3f287985e76a2, role: viewer}
--- admin
GET /apisix/admin/routes/1
--- more_headers
Cookie: x_api_key=edd1c9f034335f136f87ad84b625c8f1
--- error_code: 200



=== TEST 5: a viewer may read
--- extra_yaml_config
deployment:
  admin:
    admin_key:
      - {name: admin, key: edd1c9f034335f136f87ad84b625c8f1, role: admin}
      - {name: viewer, key: 4054f7cf07e344346cd3f287985e76a2, role: viewer}
--- admin
GET /apisix/admin/routes/1
--- more_headers
X-API-KEY: 4054f7cf07e344346cd3f287985e76a2
--- error_code: 200



=== TEST 6: but not write
--- extra_yaml_config
deployment:
  admin:
    admin_key:
      - {name: admin, key: edd1c9f034335f136f87ad84b625c8f1, role: admin}
      - {name: viewer, key: 4054f7cf07e344346cd3f287985e76a2, role: viewer}
--- admin
DELETE /apisix/admin/routes/1
--- more_headers
X-API-KEY: 4054f7cf07e344346cd3f287985e76a2
--- error_code: 401
--- response_body_json
{"error_msg": "failed to check token", "description": "invalid method for role viewer"}



=== TEST 7: HEAD /apisix/admin needs no key
--- extra_yaml_config
deployment:
  admin:
    admin_key:
      - {name: admin, key: edd1c9f034335f136f87ad84b625c8f1, role: admin}
--- admin
HEAD /apisix/admin
--- error_code: 200



=== TEST 8: admin_key_required false turns the check off
--- extra_yaml_config
deployment:
  admin:
    admin_key_required: false
    admin_key:
      - {name: admin, key: edd1c9f034335f136f87ad84b625c8f1, role: admin}
--- admin
GET /apisix/admin/routes/1
--- error_code: 200



=== TEST 9: a client outside allow_admin gets nginx's 403
--- extra_yaml_config
deployment:
  admin:
    allow_admin:
      - 10.0.0.0/8
--- admin
GET /apisix/admin/routes
--- error_code: 403
--- response_body_like
403 Forbidden



=== TEST 10: the key never reaches the error log
--- extra_yaml_config
deployment:
  admin:
    admin_key:
      - {name: admin, key: edd1c9f034335f136f87ad84b625c8f1, role: admin}
--- admin
GET /apisix/admin/routes?api_key=edd1c9f034335f136f87ad84b625c8f1
--- no_error_log
edd1c9f034335f136f87ad84b625c8f1
