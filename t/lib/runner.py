"""Run one `.t` block against a real gateway: the phases, and what every section means.

A file's blocks share one prefix (a temp dir with conf/ and logs/) and one gateway, which is
(re)started only when a block needs it and its config.yaml differs from the one the running
gateway was started with. Phases, in order:

 1. config     write conf/config.yaml and conf/apisix.yaml
 2. gateway    start it if the block has a section that needs one and none runs with this
               config (stop + start when the config changed)
 3. background start `inflight_request`, then `load`
 4. action     `signal`, `kill_worker`, each awaited by watching the process table
 5. exec       the shell command
 6. requests   `request` / `pipelined_requests` / `raw_request` (x repeat_each), then every
               assertion on every response; retried until they pass or `timeout` runs out
               when apisix.yaml was changed under a running gateway (it reloads live)
 7. background finish load / in-flight and judge them
 8. wait       the only fixed sleep
 9. log checks only lines written during this block

Sections
  yaml_config        conf/config.yaml verbatim (else the harness default, default_config();
                     `${{GATEWAY_TEST_ETCD}}` there names the session's etcd)
  extra_yaml_config  YAML deep-merged into the config (dicts merge, the rest replaces)
  log_level          nginx_config.error_log_level for this block (prologue: log_level())
  apisix_yaml        conf/apisix.yaml verbatim (atomic write); persists for later blocks;
                     the file starts as `routes: []` + `#END`. A file with this section runs
                     the standalone data plane; other files the traditional role (etcd,
                     emptied when the file starts, and the Admin API on 127.0.0.1:9180)
  admin              Admin API calls as data; response_body_json(_subset): see
                     t/lib/admin_sections.py
  request            `METHOD URI [HTTP/x.y]` + body lines; eval array = one connection per
                     request; Host: localhost, Connection: close, Content-Length added
  more_headers       `Name: value` lines added to each request (eval array: per request)
  pipelined_requests eval array sent at once on one keep-alive connection (last: close)
  raw_request        bytes sent verbatim (an eval array of packets is joined); one response
  error_code         expected status, default 200 (array: per request); 0 means no
                     response at all (closed, reset, timed out); error_code_like
  response_body      exact body; response_body_like / _unlike: Perl regex, `s` flag, not
                     anchored; as text its final newline is dropped (so `^a$` or `x` on
                     the last line need not match a newline), as eval it is used as is
  response_headers   `Name: value` equal ("Name:" = missing or empty), `!Name` absent;
                     response_headers_like `Name: regex` anchored; raw_response_headers_like
  exec               bash command; cwd PREFIX; env GATEWAY (the CLI), PREFIX, PYTHON,
                     GATEWAY_TEST_ETCD, GATEWAY_TEST_REDIS_* (the cluster's once a block
                     named it); output (stdout+stderr) is the body for the body
                     assertions when the block sends no HTTP request; needs no gateway and
                     leaves alone whatever runs (a gateway from an earlier block, with that
                     block's config, still runs: stop it in the command if it is in the
                     way); time limit `timeout` if given, else 60 s
  exit_code          exit status of exec, default 0
  error_log          lines (literal substrings; eval: qr// or array) that must appear; polled
  no_error_log       lines that must not appear; a block with none of error_log,
                     no_error_log, grep_error_log, ignore_error_log gets `[error]`
  grep_error_log     pattern; its first match on each line, one per line, must equal
                     grep_error_log_out (or match it, when that is a qr//); polled
  timeout            seconds (`1.5`, `500ms`): request timeout, retry and polling budget;
                     default 5
  wait               seconds to sleep after the requests, before the log checks
  signal             e.g. `HUP` (several: `TTIN TTIN`): sent to the master (logs/gateway.pid),
                     then its effect is awaited: HUP - every pre-signal worker is gone and
                     as many workers as before run; TTIN/TTOU - one worker more/less;
                     WINCH - no workers; QUIT/TERM/INT - master gone and pid file removed;
                     USR2 - a new master in gateway.pid, the old pid in gateway.pid.oldbin;
                     USR1 - nothing to await. Effects wait max(timeout, 10) s.
  kill_worker        signal name (e.g. KILL): one worker gets it; awaited: that pid gone and
                     the worker count back to what it was
  load               a request line; 4 threads send it on new connections from before the
                     action until at least 50 more completed after its effect; any status
                     other than load_expect (default 200), reset or timeout fails the block
  inflight_request   a request (e.g. GET /mysleep?seconds=1) sent in a thread; the action
                     waits until the mock upstream received it; its response is checked
                     against inflight_error_code (default 200; 0 = must get no response)
                     and inflight_response_body
  ignore_error_log   no log checks at all (not even the implicit `[error]`)
  ONLY SKIP FIRST LAST  selection, at collection

Requests always go to 127.0.0.1:1984 (APISIX's test port). The mock upstream appends the
lines APISIX's test backend logs (`/log`, `/status`, unknown paths...) to logs/error.log.
It also serves `/body_size` (the request body's size, counted, never held: bounded-memory
tests) and `/websocket` (RFC 6455 handshake, then every frame echoed until close). The
default config trusts 127.0.0.1 (`apisix.trusted_addresses`), as APISIX's test config does.
Note that `exec` starts no gateway: a block with only `exec` runs against whatever the
previous block left running (give the first block of a file a request).
A section nobody registered fails the block; new kinds (the Admin API's) are added with
`registry.register(name, Phase.REQUEST, needs_gateway=True)` on a function returning
`Exchange`s, plus `Phase.ASSERT` handlers for their own assertions.
"""

from __future__ import annotations

import copy
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from t.lib import admin_sections, checks, process_sections  # noqa: F401  (they register sections)
from t.lib.gateway_proc import REPO, Gateway, gateway_command
from t.lib.http_client import HttpError, Response, build_request, exchange, to_bytes
from t.lib.mock_upstream import MockUpstream
from t.lib.registry import (REGISTRY, Background, BlockFailure, Exchange, Phase, declare,
                            parse_duration, register)
from t.lib.tparser import Block, TFile

DEFAULT_TIMEOUT = 5.0
EXEC_TIMEOUT = 60.0
START_TIMEOUT = 60.0
INITIAL_APISIX_YAML = "routes: []\n#END\n"


def default_config(etcd_url: str, workers: int | None, log_level: str | None,
                   standalone: bool = False) -> dict:
    """The config.yaml a block gets without `yaml_config`.

    Traditional role: config in the session's etcd, the Admin API on 127.0.0.1:9180 without
    an admin key (as APISIX's suite runs). A file that uses `apisix_yaml` gets the standalone
    (yaml) data plane instead. ``trusted_addresses: [127.0.0.1]`` as in APISIX's test config:
    the harness's own X-Forwarded-* headers are kept."""
    conf = {
        "apisix": {"node_listen": 1984, "trusted_addresses": ["127.0.0.1"]},
        "deployment": {
            "role": "traditional",
            "role_traditional": {"config_provider": "etcd"},
            "admin": {"admin_key": None, "allow_admin": ["127.0.0.0/24"],
                      "admin_listen": {"ip": "127.0.0.1", "port": 9180}},
            "etcd": {"host": [etcd_url], "prefix": "/apisix"},
        },
        "nginx_config": {"error_log_level": log_level or "info",
                         "worker_processes": workers or 1},
        # 9091 stays free for a second node an `exec` block starts (t/plugin/prometheus.t
        # turns the export server on)
        "plugin_attr": {"prometheus": {"enable_export_server": False}},
    }
    if standalone:
        conf["apisix"]["enable_admin"] = False
        conf["deployment"] = {"role": "data_plane",
                              "role_data_plane": {"config_provider": "yaml"},
                              "etcd": {"host": [etcd_url], "prefix": "/apisix"}}
    return conf


def deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


@dataclass
class Session:
    """What all files share: the mock upstream and the session's etcd URL."""

    mock: MockUpstream
    etcd_url: str


class FileState:
    """One `.t` file's prefix, gateway and persistent apisix.yaml."""

    def __init__(self, tfile: TFile, session: Session):
        self.tfile, self.session = tfile, session
        self.prefix = Path(tempfile.mkdtemp(prefix="gateway-t-"))
        (self.prefix / "conf").mkdir()
        (self.prefix / "logs").mkdir()
        env = dict(os.environ, GATEWAY_TEST_ETCD=session.etcd_url)
        self.gateway = Gateway(self.prefix, env)
        self.apisix_yaml = ""
        self.write_apisix_yaml(INITIAL_APISIX_YAML)
        #: a file that writes apisix.yaml runs the standalone data plane by default
        self.standalone = any(b.has("apisix_yaml") for b in tfile.blocks)
        if not self.standalone:
            admin_sections.wipe_etcd(session.etcd_url)
        self.failed = False
        session.mock.log_path = str(self.gateway.error_log)

    def write_atomic(self, name: str, text: str, bump_mtime: bool = False) -> None:
        path = self.prefix / "conf" / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_bytes(to_bytes(text))
        if bump_mtime and path.exists():
            # Pollers that compare whole-second mtimes must still see a change.
            stamp = max(time.time(), path.stat().st_mtime + 1.0)
            os.utime(tmp, (stamp, stamp))
        os.replace(tmp, path)

    def write_apisix_yaml(self, text: str) -> bool:
        if text == self.apisix_yaml:
            return False
        self.write_atomic("apisix.yaml", text, bump_mtime=True)
        self.apisix_yaml = text
        return True

    def config_text(self, block: Block) -> str:
        pro = self.tfile.prologue
        yaml_config = block.get("yaml_config")
        extra = block.get("extra_yaml_config")
        level = block.get("log_level")
        if yaml_config is not None and extra is None and level is None:
            return str(yaml_config)
        try:
            if yaml_config is not None:
                conf = yaml.safe_load(str(yaml_config)) or {}
            else:
                conf = default_config(self.session.etcd_url, pro.workers, pro.log_level,
                                      self.standalone)
            if extra is not None:
                conf = deep_merge(conf, yaml.safe_load(str(extra)) or {})
        except yaml.YAMLError as e:
            raise BlockFailure(f"{block.name} - yaml_config/extra_yaml_config is not "
                               f"valid YAML: {e}") from None
        if level is not None:
            conf = deep_merge(conf, {"nginx_config": {"error_log_level": str(level).strip()}})
        return yaml.safe_dump(conf, sort_keys=False)

    def teardown(self) -> str | None:
        problem = self.gateway.stop()
        if self.session.mock.log_path == str(self.gateway.error_log):
            self.session.mock.log_path = None
        if not self.failed and not os.environ.get("GATEWAY_TEST_KEEP"):
            shutil.rmtree(self.prefix, ignore_errors=True)
        return problem


class BlockRun:
    """The state of one block while it runs; handlers get it as `run`."""

    def __init__(self, state: FileState, block: Block):
        self.state, self.block = state, block
        self.timeout = parse_duration(block.get("timeout"), DEFAULT_TIMEOUT)
        self.log_offset = self._log_size()
        self.backgrounds: list[Background] = []

    def _log_size(self) -> int:
        try:
            return self.state.gateway.error_log.stat().st_size
        except OSError:
            return 0

    def log_text(self) -> str:
        try:
            with open(self.state.gateway.error_log, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(self.log_offset if size >= self.log_offset else 0)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_lines(self) -> list[str]:
        return self.log_text().splitlines()


# -- section declarations handled here -------------------------------------------------------

declare("yaml_config extra_yaml_config apisix_yaml log_level", Phase.CONFIG)
declare("more_headers timeout grep_error_log_out ignore_error_log", Phase.PARAM)
declare("ONLY SKIP FIRST LAST", Phase.META)
declare("wait", Phase.WAIT)
declare("exec", Phase.EXEC)


def _readable(text: str) -> str:
    lines = text.strip("\n").split("\n")
    body = "\n".join(lines[1:]).strip()
    return lines[0] + (f" (+ body, {len(body)} chars)" if body else "")


def _headers_for(block: Block, i: int) -> str:
    more = block.get("more_headers") or ""
    if isinstance(more, list):
        return str(more[i]) if i < len(more) else ""
    return str(more)


def _flatten(value: object) -> str:
    """A request given as an array of packets is sent as one piece."""
    if isinstance(value, list):
        return "".join(_flatten(v) for v in value)
    return "" if value is None else str(value)


def _to_exchange(kind: str, i: int, n: int, request: str,
                 res: Response | HttpError) -> Exchange:
    if isinstance(res, HttpError):
        return Exchange(kind, i, n, request, error=str(res))
    return Exchange(kind, i, n, request, response=res)


@register("request", Phase.REQUEST, needs_gateway=True)
def produce_request(run: BlockRun, value: object) -> list[Exchange]:
    reqs = value if isinstance(value, list) else [value]
    out = []
    for i, r in enumerate(reqs):
        text = _flatten(r)
        try:
            raw = build_request(text, _headers_for(run.block, i))
        except ValueError as e:
            raise BlockFailure(f"{run.block.name} - bad --- request: {e}") from None
        res = exchange(raw, 1, run.timeout)[0]
        out.append(_to_exchange("http", i, len(reqs), _readable(text), res))
    return out


@register("pipelined_requests", Phase.REQUEST, needs_gateway=True)
def produce_pipelined(run: BlockRun, value: object) -> list[Exchange]:
    reqs = value if isinstance(value, list) else [value]
    raws = []
    for i, r in enumerate(reqs):
        conn = "close" if i == len(reqs) - 1 else "keep-alive"
        try:
            raws.append(build_request(_flatten(r), _headers_for(run.block, i), conn))
        except ValueError as e:
            raise BlockFailure(f"{run.block.name} - bad --- pipelined_requests: {e}") from None
    heads = [_flatten(r).lstrip().upper().startswith("HEAD ") for r in reqs]
    results = exchange(b"".join(raws), len(reqs), run.timeout, heads)
    return [_to_exchange("http", i, len(reqs), _readable(_flatten(r)) + " (pipelined)", res)
            for i, (r, res) in enumerate(zip(reqs, results))]


@register("raw_request", Phase.REQUEST, needs_gateway=True)
def produce_raw(run: BlockRun, value: object) -> list[Exchange]:
    text = _flatten(value)
    res = exchange(to_bytes(text), 1, run.timeout)[0]
    return [_to_exchange("http", 0, 1, "raw: " + repr(text[:200]), res)]


# -- the phases ------------------------------------------------------------------------------

def run_exec(run: BlockRun, command: str) -> Exchange:
    state = run.state
    env = dict(state.gateway.env, GATEWAY=shlex.join(gateway_command()),
               PREFIX=str(state.prefix), PYTHON=sys.executable, REPO=str(REPO))
    # the Redis servers of the session, the cluster included once a block started it
    env.update((k, v) for k, v in os.environ.items() if k.startswith("GATEWAY_TEST_REDIS"))
    limit = run.timeout if run.block.has("timeout") else EXEC_TIMEOUT
    # Output goes to a file, not a pipe: a daemon the command starts (`$GATEWAY start`) may
    # keep the descriptor open, and we wait for bash to exit, not for end-of-file.
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(["bash", "-c", command], cwd=state.prefix, env=env,
                                stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code: int | None = proc.wait(timeout=limit)
            err = None
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code, err = None, f"timed out after {limit:g}s"
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return Exchange("exec", 0, 1, "exec: " + command.strip().replace("\n", "; "),
                    exit_code=code, output=text, error=err)


def ensure_gateway(run: BlockRun, config: str) -> bool:
    """Make sure a gateway started with `config` runs; True when it was (re)started now."""
    gw = run.state.gateway
    if gw.running() and gw.started_config == config:
        return False
    if gw.running():
        gw.stop()
    res = gw.start(config, START_TIMEOUT)
    if res.returncode != 0:
        raise BlockFailure(
            f"{run.block.name} - the gateway did not start (`gateway start` exited "
            f"{res.returncode})\n  stderr: {res.stderr.strip() or '(empty)'}\n"
            f"  stdout: {res.stdout.strip() or '(empty)'}\n  error.log tail:\n"
            + "\n".join("    " + ln for ln in gw.log_tail(30).splitlines()))
    return True


def _sections(block: Block, phase: Phase) -> list[tuple[str, Any]]:
    return [(n, s.value) for n, s in block.sections.items() if REGISTRY[n].phase == phase]


def assert_exchanges(run: BlockRun, exchanges: list[Exchange]) -> list[str]:
    block = run.block
    has_http = any(e.kind == "http" for e in exchanges)
    out: list[str] = []
    for ex in exchanges:
        for name, value in _sections(block, Phase.ASSERT):
            d = REGISTRY[name]
            if ex.kind not in d.applies_to or (ex.kind == "exec" and has_http
                                                and name != "exit_code"):
                continue
            out += d.handler(run, value, ex)
        if ex.kind == "http" and not (block.has("error_code") or block.has("error_code_like")):
            out += checks.check_error_code(run, "200", ex)
        if ex.kind == "exec" and not block.has("exit_code"):
            out += checks.check_exit_code(run, 0, ex)
    return out


def run_requests(run: BlockRun, retry: bool) -> list[str]:
    producers = _sections(run.block, Phase.REQUEST)
    if not producers:
        return []
    deadline = time.monotonic() + run.timeout
    if retry and run.block.has("error_log"):
        checks.await_log_patterns(run, checks.log_patterns(run.block.get("error_log")),
                                  run.timeout)
    while True:
        exchanges: list[Exchange] = []
        for _ in range(run.state.tfile.prologue.repeat_each):
            round_: list[Exchange] = []
            for name, value in producers:
                round_ += REGISTRY[name].handler(run, value)
            # one numbering across producers (admin calls, then requests): assertion arrays
            # such as `error_code eval [201, 200]` follow the order the block sends them in
            for i, ex in enumerate(round_):
                ex.index, ex.count = i, len(round_)
            exchanges += round_
        failures = assert_exchanges(run, exchanges)
        if not failures or not retry or time.monotonic() >= deadline:
            return failures
        time.sleep(0.1)


def check_logs(run: BlockRun) -> list[str]:
    block = run.block
    out: list[str] = []
    for name, value in _sections(block, Phase.LOGCHECK):
        out += REGISTRY[name].handler(run, value)
    if not any(block.has(n) for n in ("error_log", "no_error_log", "grep_error_log",
                                      "ignore_error_log")):
        out += checks.check_no_error_log(run, "[error]\n")
    return out


def run_block(state: FileState, block: Block) -> None:
    """Run one block; raise BlockFailure with the full report if anything failed."""
    try:
        _run_block(state, block)
    except BlockFailure as e:
        msg = str(e)
        if not msg.startswith(block.name):
            raise BlockFailure(f"{block.name} - {msg}") from None
        raise


def _run_block(state: FileState, block: Block) -> None:
    unknown = [f"--- {s.name} (line {s.line})" for s in block.sections.values()
               if s.name not in REGISTRY]
    if unknown:
        raise BlockFailure(f"{block.name} - unsupported section(s): {', '.join(unknown)}")
    run = BlockRun(state, block)

    config = state.config_text(block)
    conf_path = state.prefix / "conf" / "config.yaml"
    if not conf_path.exists() or conf_path.read_text() != config:
        state.write_atomic("config.yaml", config)
    yaml_changed = block.has("apisix_yaml") and state.write_apisix_yaml(
        str(block.get("apisix_yaml")))

    needs = any(REGISTRY[n].needs_gateway for n in block.sections)
    fresh = ensure_gateway(run, config) if needs else False

    failures: list[str] = []
    aborted = False
    try:
        try:
            for name in ("inflight_request", "load"):
                if block.has(name):
                    run.backgrounds.append(REGISTRY[name].handler(run, block.get(name)))
            for name, value in _sections(block, Phase.ACTION):
                REGISTRY[name].handler(run, value)
            for bg in run.backgrounds:
                bg.mark()
            if block.has("exec"):
                ex = run_exec(run, str(block.get("exec")))
                if _sections(block, Phase.REQUEST):
                    failures += checks.check_exit_code(run, block.get("exit_code", 0), ex)
                else:
                    failures += assert_exchanges(run, [ex])
            failures += run_requests(run, retry=bool(yaml_changed and not fresh))
        except BlockFailure as e:
            failures.append(str(e))
            aborted = True
    finally:
        for bg in run.backgrounds:
            failures += bg.finish()
    if aborted:
        raise BlockFailure("\n\n".join(failures + _log_excerpt(run, failures)))
    if block.has("wait"):
        time.sleep(parse_duration(block.get("wait"), 0.0))
    failures += check_logs(run)
    if failures:
        raise BlockFailure("\n\n".join(failures + _log_excerpt(run, failures)))


def _log_excerpt(run: BlockRun, failures: list[str], lines: int = 20) -> list[str]:
    """What the gateway logged at warn level or above while the block ran (its last
    lines, less those the failures already quote), for the report: on a CI machine the
    kept prefix goes with the machine, and a rare failure is only explained by what the
    gateway saw."""
    quoted = "\n".join(failures)
    seen = [ln for ln in run.log_lines() if ln not in quoted and any(
        level in ln for level in ("[warn]", "[error]", "[crit]", "[alert]", "[emerg]"))]
    if not seen:
        return []
    return ["  error.log while the block ran (warn and above, last %d):\n%s"
            % (lines, "\n".join("    " + ln for ln in seen[-lines:]))]
