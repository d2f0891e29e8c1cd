"""Admin API sections: calls written as data, and JSON assertions on their answers.

  admin                     one or more calls to the Admin API (127.0.0.1:9180): a line
                            `METHOD /apisix/admin/...` starts a call, the lines after it (up
                            to the next such line) are its body, sent as is. `more_headers`
                            apply (e.g. `X-API-KEY: ...`). Each call is one exchange, so
                            `error_code` etc. take an array for several calls. In a body,
                            `${{file t/certs/test.crt}}` becomes that file's text as a JSON
                            string (path relative to the repository), `${{env NAME}}` the
                            value of that environment variable, as is (e.g.
                            GATEWAY_TEST_REDIS_PORT; an unset one fails the block).
  response_body_json        the body parses as JSON equal to this JSON (formatting ignored)
  response_body_json_subset the body parses as JSON that contains this JSON: objects may
                            have more keys, arrays must have the same length, element by
                            element, and scalars are equal

The blocks of a file share one etcd keyspace (/apisix), emptied when the file starts, so a
file sees only its own objects, as in APISIX's suite.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
import base64
from typing import Any

from t.lib.gateway_proc import REPO
from t.lib.http_client import build_request, exchange
from t.lib.redis_server import LAZY_ENV
from t.lib.registry import BlockFailure, Exchange, Phase, indexed, register

ADMIN_PORT = 9180
_CALL = re.compile(r"^(GET|PUT|POST|PATCH|DELETE|HEAD|OPTIONS)\s+/\S*", re.M)


def split_calls(text: str) -> list[str]:
    """`admin` text → one request text per call (request line + body lines)."""
    starts = [m.start() for m in _CALL.finditer(text)]
    if not starts or text[:starts[0]].strip():
        raise BlockFailure("--- admin must start with `METHOD /path`")
    bounds = starts + [len(text)]
    return [text[a:b].strip("\n") for a, b in zip(bounds, bounds[1:])]


_FILE = re.compile(r"\$\{\{file ([^}]+)\}\}")
_ENV = re.compile(r"\$\{\{env ([A-Za-z_][A-Za-z0-9_]*)\}\}")


def _env(m: re.Match) -> str:
    value = os.environ.get(m.group(1))
    starter = LAZY_ENV.get(m.group(1)) if value is None else None
    if starter is not None:
        starter()   # e.g. the Redis cluster, started on first use
        value = os.environ.get(m.group(1))
    if value is None:
        raise BlockFailure(f"${{{{env {m.group(1)}}}}}: the variable is not set "
                           "(for GATEWAY_TEST_REDIS_*: is redis-server installed?)")
    return value


def expand_files(text: str) -> str:
    def repl(m: re.Match) -> str:
        with open(REPO / m.group(1).strip(), encoding="utf-8") as f:
            return json.dumps(f.read())
    return _ENV.sub(_env, _FILE.sub(repl, text))


def _headers_for(run: Any, i: int) -> str:
    more = run.block.get("more_headers") or ""
    if isinstance(more, list):
        return str(more[i]) if i < len(more) else ""
    return str(more)


@register("admin", Phase.REQUEST, needs_gateway=True)
def produce_admin(run: Any, value: object) -> list[Exchange]:
    texts = [expand_files(t) for v in (value if isinstance(value, list) else [value])
             for t in split_calls(str(v))]
    out = []
    for i, text in enumerate(texts):
        try:
            raw = build_request(text, _headers_for(run, i), host="127.0.0.1:%d" % ADMIN_PORT)
        except ValueError as exc:
            raise BlockFailure(f"bad --- admin call: {exc}") from None
        head = text.lstrip().upper().startswith("HEAD ")
        res = exchange(raw, 1, run.timeout, [head], port=ADMIN_PORT)[0]
        first = text.split("\n", 1)[0]
        if hasattr(res, "status"):
            out.append(Exchange("http", i, len(texts), "admin: " + first, response=res))
        else:
            out.append(Exchange("http", i, len(texts), "admin: " + first, error=str(res)))
    return out


def _parse(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BlockFailure(f"{what} is not JSON: {exc}") from None


def subset_problem(expected: Any, got: Any, path: str = "$") -> str | None:
    """Where `got` does not contain `expected` (None when it does)."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{path}: expected an object, got {json.dumps(got)[:200]}"
        for key, value in expected.items():
            if key not in got:
                return f"{path}.{key}: missing"
            problem = subset_problem(value, got[key], f"{path}.{key}")
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return f"{path}: expected {json.dumps(expected)[:200]}, got {json.dumps(got)[:200]}"
        for i, (e, g) in enumerate(zip(expected, got)):
            problem = subset_problem(e, g, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if expected != got or type(expected) is not type(got) and not (
            isinstance(expected, (int, float)) and isinstance(got, (int, float))
            and not isinstance(got, bool)):
        return f"{path}: expected {json.dumps(expected)}, got {json.dumps(got)[:200]}"
    return None


def _body_json(run: Any, ex: Exchange, section: str) -> tuple[Any, list[str]]:
    if ex.response is None:
        return None, [f"{run.block.name} - {ex.request}: no response ({ex.error})"]
    try:
        return json.loads(ex.response.text), []
    except ValueError:
        return None, [f"{run.block.name} - {section}{ex.label()}: the body is not JSON: "
                      f"{ex.response.text[:300]!r}"]


@register("response_body_json", Phase.ASSERT)
def check_body_json(run: Any, expected: object, ex: Exchange) -> list[str]:
    want = _parse(str(indexed(expected, ex, "response_body_json")), "--- response_body_json")
    got, problems = _body_json(run, ex, "response_body_json")
    if problems:
        return problems
    if got != want:
        return [f"{run.block.name} - response_body_json{ex.label()} ({ex.request}):\n"
                f"  expected {json.dumps(want, sort_keys=True)}\n"
                f"  got      {json.dumps(got, sort_keys=True)}"]
    return []


@register("response_body_json_subset", Phase.ASSERT)
def check_body_json_subset(run: Any, expected: object, ex: Exchange) -> list[str]:
    want = _parse(str(indexed(expected, ex, "response_body_json_subset")),
                  "--- response_body_json_subset")
    got, problems = _body_json(run, ex, "response_body_json_subset")
    if problems:
        return problems
    problem = subset_problem(want, got)
    if problem:
        return [f"{run.block.name} - response_body_json_subset{ex.label()} ({ex.request}): "
                f"{problem}\n  body: {ex.response.text[:600]}"]
    return []


def wipe_etcd(etcd_url: str, prefix: str = "/apisix") -> None:
    """Delete every key under `prefix` (a file starts from an empty keyspace)."""
    key = prefix.encode()
    end = key[:-1] + bytes([key[-1] + 1])
    body = json.dumps({"key": base64.b64encode(key).decode(),
                       "range_end": base64.b64encode(end).decode()}).encode()
    req = urllib.request.Request(etcd_url + "/v3/kv/deleterange", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()
