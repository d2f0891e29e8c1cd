"""Test helper for t/etcd/*.t: write to etcd and await the gateway serving the result.

Talks to etcd's v3 HTTP gateway directly with requests (not with the gateway's own client, so
the product is tested against an independent writer). The etcd URL is $GATEWAY_TEST_ETCD
unless --etcd is given; --user/--password authenticate first.

  kv.py put KEY VALUE          print the revision written
  kv.py del KEY
  kv.py get KEY                print the value, or (none)
  kv.py rev                    print the current revision
  kv.py compact                compact at the current revision
  kv.py enable_auth PASSWORD   add user root with PASSWORD and turn authentication on
  kv.py wait METHOD URI STATUS [BODY-SUBSTRING]
      poll 127.0.0.1:1984 until STATUS (and the substring) is seen on 5 requests in a row
      (each on a new connection, so every worker is likely asked); exit 1 after 10 s
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time

import requests


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


TOKEN: dict[str, str] = {}


def call(etcd: str, path: str, body: dict) -> dict:
    resp = requests.post(etcd + path, json=body, timeout=5, headers=TOKEN)
    resp.raise_for_status()
    return resp.json()


def wait(method: str, uri: str, status: int, needle: str | None, limit: float = 10.0) -> int:
    deadline = time.monotonic() + limit
    streak, last = 0, "(no response)"
    while time.monotonic() < deadline:
        try:
            resp = requests.request(method, "http://127.0.0.1:1984" + uri, timeout=2,
                                    headers={"Connection": "close"})
            last = "%d %s" % (resp.status_code, resp.text.strip())
            ok = resp.status_code == status and (needle is None or needle in resp.text)
        except requests.RequestException as exc:
            last, ok = str(exc), False
        streak = streak + 1 if ok else 0
        if streak >= 5:
            print("served: %s %s -> %d" % (method, uri, status))
            return 0
        time.sleep(0.05)
    print("not served in time: %s %s; last answer: %s" % (method, uri, last))
    return 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--etcd", default=os.environ.get("GATEWAY_TEST_ETCD"))
    parser.add_argument("verb")
    parser.add_argument("args", nargs="*")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    etcd = (args.etcd or "").rstrip("/")
    if args.user:
        TOKEN["Authorization"] = call(etcd, "/v3/auth/authenticate",
                                      {"name": args.user, "password": args.password})["token"]
    if args.verb == "put":
        key, value = args.args
        print(call(etcd, "/v3/kv/put", {"key": b64(key), "value": b64(value)})
              ["header"]["revision"])
    elif args.verb == "del":
        call(etcd, "/v3/kv/deleterange", {"key": b64(args.args[0])})
    elif args.verb == "get":
        kvs = call(etcd, "/v3/kv/range", {"key": b64(args.args[0])}).get("kvs") or []
        print(base64.b64decode(kvs[0]["value"]).decode() if kvs else "(none)")
    elif args.verb == "rev":
        print(call(etcd, "/v3/kv/range", {"key": b64("/")})["header"]["revision"])
    elif args.verb == "compact":
        rev = call(etcd, "/v3/kv/range", {"key": b64("/")})["header"]["revision"]
        call(etcd, "/v3/kv/compaction", {"revision": rev, "physical": True})
    elif args.verb == "enable_auth":
        call(etcd, "/v3/auth/user/add", {"name": "root", "password": args.args[0]})
        call(etcd, "/v3/auth/user/grant", {"user": "root", "role": "root"})
        call(etcd, "/v3/auth/enable", {})
    elif args.verb == "wait":
        method, uri, status = args.args[:3]
        return wait(method, uri, int(status), args.args[3] if len(args.args) > 3 else None)
    else:
        parser.error("unknown verb %r" % args.verb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
