"""A small etcd v3 client over etcd's HTTP/JSON gateway (`/v3/kv/range`, `/v3/watch`, ...).

Why not gRPC: the master forks workers while its threads run, and gRPC is not fork-safe; the
measured Python gRPC clients also spin CPU or lock themselves out while etcd is down (see
DESIGN.md, "Decisions already measured"). APISIX itself talks to this gateway too. Keys and
values travel base64-encoded; revisions travel as decimal strings. Unary calls go through a
lean keep-alive transport (etcd_http.py: they are per Admin API write), the watch stream
through `requests`.

What the callers get:
  - typed errors: `EtcdUnavailable` (no endpoint answered), `EtcdCompacted` (the revision asked
    for is gone: re-list), `EtcdError` (etcd answered with an error);
  - failover: every call tries the endpoint that worked last, then the others; an endpoint
    that failed is tried last for `health_check_timeout` seconds;
  - auth: with `user`/`password` a token is fetched from `/v3/auth/authenticate`, sent as the
    `Authorization` header and renewed once when etcd says it is invalid. Neither the password
    nor the token is ever part of a log line or an exception message;
  - `watch()`: a generator of `WatchBatch`es that ends quietly after `watch_timeout` seconds
    without traffic, so the caller re-opens it from its last revision (a half-open TCP
    connection cannot hang the source forever).
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from gateway.master.etcd_http import Reply, Transport, TransportError

#: connect timeout cap (seconds): a black-holed endpoint must not stall failover for `timeout`
CONNECT_TIMEOUT = 5.0
#: gRPC status codes etcd returns through the gateway
_UNAUTHENTICATED = 16
_OUT_OF_RANGE = 11


class EtcdError(Exception):
    """etcd answered, with an error (bad request, permission denied, ...)."""


class EtcdUnavailable(EtcdError):
    """No configured endpoint could be reached (refused, timed out, 5xx)."""


class EtcdCompacted(EtcdError):
    """The requested revision was compacted away; the caller must list again."""

    def __init__(self, message: str, compact_revision: int = 0):
        super().__init__(message)
        self.compact_revision = compact_revision


# ---------------------------------------------------------------------- pure helpers
def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode("ascii")


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def prefix_range_end(prefix: bytes) -> bytes:
    """The `range_end` that selects every key starting with `prefix` (etcd's rule).

    Increment the last byte that is not 0xff and drop what follows; an all-0xff (or empty)
    prefix means "to the end of the keyspace", which etcd spells as a single NUL byte.
    """
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


@dataclass(frozen=True)
class KV:
    key: str
    value: bytes
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    lease: int = 0


@dataclass(frozen=True)
class Event:
    type: str            # "PUT" or "DELETE"
    kv: KV


@dataclass
class WatchBatch:
    """The events of one watch message; `revision` is the newest mod revision among them."""

    revision: int
    events: list[Event] = field(default_factory=list)


def parse_kv(raw: Mapping[str, Any]) -> KV:
    return KV(key=unb64(raw.get("key")).decode("utf-8", "replace"),
              value=unb64(raw.get("value")),
              create_revision=int(raw.get("create_revision") or 0),
              mod_revision=int(raw.get("mod_revision") or 0),
              version=int(raw.get("version") or 0),
              lease=int(raw.get("lease") or 0))


def header_revision(body: Mapping[str, Any]) -> int:
    return int((body.get("header") or {}).get("revision") or 0)


def parse_watch_message(message: Mapping[str, Any]) -> WatchBatch | None:
    """One line of the `/v3/watch` stream → a batch, or None (created / progress / empty).

    Raises EtcdCompacted when etcd cancelled the watch because its start revision is gone,
    EtcdError for any other error or cancellation.
    """
    if "error" in message:
        err = message["error"] or {}
        raise EtcdError("watch: %s" % (err.get("message") or err))
    result = message.get("result") or {}
    compact = int(result.get("compact_revision") or 0)
    if compact:
        raise EtcdCompacted("watch: revision compacted (oldest kept: %d)" % compact, compact)
    if result.get("canceled"):
        raise EtcdError("watch cancelled by etcd: %s" % (result.get("cancel_reason") or "?"))
    events = [Event(ev.get("type") or "PUT", parse_kv(ev.get("kv") or {}))
              for ev in result.get("events") or ()]
    if not events:
        return None
    return WatchBatch(max(ev.kv.mod_revision for ev in events), events)


def split_lines(buffer: bytes, chunk: bytes) -> tuple[list[bytes], bytes]:
    """Complete newline-terminated lines of `buffer + chunk`, and the incomplete rest."""
    data = buffer + chunk
    *lines, rest = data.split(b"\n")
    return [line for line in lines if line.strip()], rest


def version_tuple(text: str) -> tuple[int, ...]:
    """"3.4.23" → (3, 4, 23); what follows the dotted numbers ("-rc.1") is ignored."""
    match = re.match(r"\d+(?:\.\d+)*", text.strip())
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


class Backoff:
    """Capped exponential backoff with ±20% jitter, so many nodes do not retry in step."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rand: random.Random | None = None):
        self.base, self.cap = base, cap
        self.attempt = 0
        self._rand = rand or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.base * (2 ** self.attempt))
        self.attempt = min(self.attempt + 1, 32)
        return min(self.cap, delay * self._rand.uniform(0.8, 1.2))

    def reset(self) -> None:
        self.attempt = 0


# ---------------------------------------------------------------------- the client
class _SniAdapter(HTTPAdapter):
    """Sends (and verifies) a fixed TLS server name, for `deployment.etcd.tls.sni`."""

    def __init__(self, sni: str, **kwargs: Any):
        self._sni = sni
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._sni
        kwargs["assert_hostname"] = self._sni
        super().init_poolmanager(*args, **kwargs)


class EtcdClient:
    def __init__(self, hosts: Sequence[str], timeout: float = 30.0, user: str | None = None,
                 password: str | None = None, tls: Mapping[str, Any] | None = None,
                 watch_timeout: float = 50.0, health_check_timeout: float = 10.0,
                 ca_file: str | None = None):
        if not hosts:
            raise ValueError("no etcd endpoint configured")
        self.hosts = [h.rstrip("/") for h in hosts]
        self.timeout = float(timeout)
        self.watch_timeout = float(watch_timeout)
        self.health_check_timeout = float(health_check_timeout)
        self._user, self._password = user, password
        self._token: str | None = None
        self._current = 0
        self._failed_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self.session = requests.Session()
        # settings come from config.yaml alone: REQUESTS_CA_BUNDLE would silently override
        # `verify: false`, and HTTP(S)_PROXY must not route etcd traffic
        self.session.trust_env = False
        tls = tls or {}
        if tls.get("cert"):
            self.session.cert = (tls["cert"], tls["key"]) if tls.get("key") else tls["cert"]
        self.session.verify = (ca_file or True) if tls.get("verify", True) else False
        if tls.get("sni"):
            self.session.mount("https://", _SniAdapter(str(tls["sni"])))
        # unary calls (one or two per Admin API write) skip requests' per-call machinery
        self.transport = Transport(
            min(self.timeout, CONNECT_TIMEOUT), self.timeout,
            verify=bool(tls.get("verify", True)), ca_file=ca_file,
            cert=tls.get("cert") or None, key=tls.get("key") or None,
            sni=str(tls["sni"]) if tls.get("sni") else None)

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any]) -> EtcdClient:
        """A client for `deployment.etcd` of the node settings."""
        etcd = conf["deployment"]["etcd"]
        trusted = ((conf.get("apisix") or {}).get("ssl") or {}).get("ssl_trusted_certificate")
        return cls(etcd["host"], timeout=etcd.get("timeout") or 30,
                   user=etcd.get("user"), password=etcd.get("password"),
                   tls=etcd.get("tls"), watch_timeout=etcd.get("watch_timeout") or 50,
                   health_check_timeout=etcd.get("health_check_timeout") or 10,
                   ca_file=_ca_file(trusted))

    def close(self) -> None:
        self.session.close()
        self.transport.close()

    # ------------------------------------------------------------------ transport
    def _order(self) -> list[str]:
        """The endpoint that worked last first, recently failed ones at the end."""
        with self._lock:
            n = len(self.hosts)
            ring = [self.hosts[(self._current + i) % n] for i in range(n)]
            now = time.monotonic()
            healthy = [h for h in ring
                       if now - self._failed_at.get(h, -1e9) >= self.health_check_timeout]
            return healthy + [h for h in ring if h not in healthy]

    def _mark(self, host: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self._failed_at.pop(host, None)
                self._current = self.hosts.index(host)
            else:
                self._failed_at[host] = time.monotonic()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": self._token} if self._token else {}

    def _authenticate(self, host: str) -> None:
        resp = self.transport.post(host, "/v3/auth/authenticate",
                                   _json_bytes({"name": self._user, "password": self._password}),
                                   {})
        if resp.status_code != 200:
            raise EtcdError("etcd authentication as %r failed: %s"
                            % (self._user, _error_text(resp)))
        self._token = resp.json().get("token")

    def _post(self, host: str, path: str, body: Mapping[str, Any] | bytes,
              stream: bool) -> requests.Response | Reply:
        """One POST: the watch stream through requests, unary calls through the transport."""
        if stream:
            return self.session.post(host + path, json=body, stream=True,
                                     headers=self._headers(),
                                     timeout=(min(self.timeout, CONNECT_TIMEOUT),
                                              self.watch_timeout))
        return self.transport.post(host, path, body, self._headers())

    def _request(self, path: str, body: Mapping[str, Any], stream: bool = False,
                 host: str | None = None) -> requests.Response | Reply:
        """POST `body` to `path` on the first endpoint that answers; raise typed errors."""
        problems = []
        data = body if stream else _json_bytes(body)
        for candidate in [host] if host else self._order():
            try:
                if self._user and self._token is None:
                    self._authenticate(candidate)
                for attempt in (1, 2):
                    resp = self._post(candidate, path, data, stream)
                    if attempt == 1 and self._user and _is_auth_error(resp):
                        resp.close()
                        self._token = None
                        self._authenticate(candidate)
                        continue
                    break
            except (requests.RequestException, TransportError) as exc:
                self._mark(candidate, False)
                problems.append("%s: %s" % (safe_endpoint(candidate), _short(exc)))
                continue
            if resp.status_code >= 500 and not _grpc_code(resp):
                self._mark(candidate, False)
                problems.append("%s: HTTP %d" % (safe_endpoint(candidate), resp.status_code))
                resp.close()
                continue
            self._mark(candidate, True)
            if resp.status_code != 200:
                text = _error_text(resp)
                if _grpc_code(resp) == _OUT_OF_RANGE and "compacted" in text:
                    raise EtcdCompacted("%s: %s" % (path, text))
                raise EtcdError("%s: %s" % (path, text))
            return resp
        raise EtcdUnavailable("no etcd endpoint reachable (%s)" % "; ".join(problems))

    def _call(self, path: str, body: Mapping[str, Any], host: str | None = None) -> dict:
        resp = self._request(path, body, host=host)
        try:
            return resp.json()
        except ValueError:
            raise EtcdError("%s: etcd answered with invalid JSON" % path) from None

    # ------------------------------------------------------------------ API
    def version(self, host: str) -> dict[str, str]:
        """`GET /version` of one endpoint: {"etcdserver": "3.4.23", "etcdcluster": "3.4.0"}."""
        try:
            resp = self.session.get(host.rstrip("/") + "/version",
                                    timeout=(min(self.timeout, CONNECT_TIMEOUT), self.timeout))
        except requests.RequestException as exc:
            raise EtcdUnavailable("%s: %s" % (safe_endpoint(host), _short(exc))) from None
        if resp.status_code != 200:
            raise EtcdError("%s/version: HTTP %d" % (safe_endpoint(host), resp.status_code))
        return resp.json()

    def range_prefix(self, prefix: str, page: int = 500) -> tuple[list[KV], int]:
        """Every key under `prefix` and the revision the listing is consistent at.

        Pages of `page` keys, all read at the revision of the first page, so a write during
        the listing cannot produce a torn view.
        """
        start = prefix.encode()
        end = b64(prefix_range_end(start))
        kvs: list[KV] = []
        revision = 0
        while True:
            body: dict[str, Any] = {"key": b64(start), "range_end": end, "limit": page}
            if revision:
                body["revision"] = revision
            reply = self._call("/v3/kv/range", body)
            revision = revision or header_revision(reply)
            batch = [parse_kv(raw) for raw in reply.get("kvs") or ()]
            kvs += batch
            if not reply.get("more") or not batch:
                return kvs, revision
            start = batch[-1].key.encode() + b"\0"

    def get(self, key: str) -> KV | None:
        reply = self._call("/v3/kv/range", {"key": b64(key)})
        kvs = reply.get("kvs") or ()
        return parse_kv(kvs[0]) if kvs else None

    def put(self, key: str, value: str | bytes, lease: int = 0) -> int:
        body: dict[str, Any] = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        return header_revision(self._call("/v3/kv/put", body))

    def delete(self, key: str, prefix: bool = False) -> int:
        body = {"key": b64(key)}
        if prefix:
            body["range_end"] = b64(prefix_range_end(key.encode()))
        return header_revision(self._call("/v3/kv/deleterange", body))

    def txn(self, compare: list[dict], success: list[dict],
            failure: list[dict] | None = None) -> dict:
        """A raw transaction (build the parts with `cmp_*` / `op_*`); the reply has
        `succeeded` and `header.revision`."""
        return self._call("/v3/kv/txn", {"compare": compare, "success": success,
                                         "failure": failure or []})

    def compact(self, revision: int) -> None:
        self._call("/v3/kv/compaction", {"revision": str(revision), "physical": True})

    def lease_grant(self, ttl: int) -> int:
        return int(self._call("/v3/lease/grant", {"TTL": str(ttl)}).get("ID") or 0)

    def lease_keepalive(self, lease: int) -> int:
        """Renew once; the remaining TTL (0 = the lease is gone)."""
        reply = self._call("/v3/lease/keepalive", {"ID": str(lease)})
        return int((reply.get("result") or {}).get("TTL") or 0)

    def lease_revoke(self, lease: int) -> None:
        self._call("/v3/lease/revoke", {"ID": str(lease)})

    def watch(self, prefix: str, start_revision: int,
              on_open: Callable[[], None] | None = None) -> Iterator[WatchBatch]:
        """Batches of changes under `prefix` from `start_revision` on.

        Ends (without error) when the stream closes or stays silent for `watch_timeout`
        seconds; raises EtcdCompacted when `start_revision` is no longer available.
        `on_open` is called once etcd has accepted the watch.
        """
        create = {"create_request": {"key": b64(prefix),
                                     "range_end": b64(prefix_range_end(prefix.encode())),
                                     "start_revision": str(start_revision)}}
        resp = self._request("/v3/watch", create, stream=True)
        self._stream = resp
        if on_open is not None:
            on_open()
        buffer = b""
        try:
            for chunk in resp.iter_content(chunk_size=None):
                lines, buffer = split_lines(buffer, chunk)
                for line in lines:
                    try:
                        message = json.loads(line)
                    except ValueError:
                        raise EtcdError("watch: invalid JSON from etcd") from None
                    batch = parse_watch_message(message)
                    if batch is not None:
                        yield batch
        except requests.exceptions.ConnectionError as exc:
            # a read timeout on a silent stream surfaces here too: just end, the caller
            # re-opens the watch from its last revision
            if "timed out" not in str(exc).lower():
                raise EtcdUnavailable("watch stream broken: %s" % _short(exc)) from None
        except requests.RequestException as exc:
            raise EtcdUnavailable("watch stream broken: %s" % _short(exc)) from None
        finally:
            self._stream = None
            resp.close()

    def interrupt(self) -> None:
        """Best effort, from another thread: wake a watch blocked in recv (at stop).

        Shut the socket down rather than close the response: closing waits for the buffered
        reader's lock, which the watching thread holds until its read times out.
        """
        stream = getattr(self, "_stream", None)
        sock = getattr(getattr(getattr(stream, "raw", None), "_connection", None), "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _ca_file(trusted: Any) -> str | None:
    """`apisix.ssl.ssl_trusted_certificate` as a CA bundle path ("system": the OS store)."""
    if not trusted or trusted == "system":
        for path in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
            if os.path.exists(path):
                return path
        return None
    return str(trusted)


# ---------------------------------------------------------------------- txn builders
def cmp_mod_revision(key: str, revision: int, result: str = "EQUAL") -> dict:
    return {"key": b64(key), "target": "MOD", "result": result, "mod_revision": str(revision)}


def cmp_create_revision(key: str, revision: int, result: str = "EQUAL") -> dict:
    return {"key": b64(key), "target": "CREATE", "result": result,
            "create_revision": str(revision)}


def op_put(key: str, value: str | bytes, lease: int = 0) -> dict:
    put: dict[str, Any] = {"key": b64(key), "value": b64(value)}
    if lease:
        put["lease"] = str(lease)
    return {"request_put": put}


def op_delete(key: str) -> dict:
    return {"request_delete_range": {"key": b64(key)}}


def op_range(key: str) -> dict:
    return {"request_range": {"key": b64(key)}}


def _json_bytes(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


# ---------------------------------------------------------------------- error text
def _grpc_code(resp: requests.Response | Reply) -> int:
    try:
        return int(resp.json().get("code") or 0)
    except (ValueError, AttributeError, TypeError):
        return 0


def _is_auth_error(resp: requests.Response | Reply) -> bool:
    if resp.status_code == 401:
        return True
    return resp.status_code != 200 and _grpc_code(resp) == _UNAUTHENTICATED


def _error_text(resp: requests.Response | Reply) -> str:
    try:
        body = resp.json()
        return str(body.get("error") or body.get("message") or body)
    except ValueError:
        return "HTTP %d" % resp.status_code


def safe_endpoint(host: str) -> str:
    """An endpoint as it may be logged: credentials in the URL (user:pw@) masked."""
    return re.sub(r"//[^/@]*@", "//***@", host)


def _short(exc: BaseException) -> str:
    """A one-line reason without URLs' query strings or headers (never a credential)."""
    text = str(exc)
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.strip("()'\" ")[:200]
