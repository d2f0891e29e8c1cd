"""pytest plugin for `.t` files: one collector per file, one item per block, in file order.

`pytest t/` then runs the Test::Nginx-style `.t` files next to the ordinary unit tests
(`t/unit/test_*.py`). A file's blocks share a prefix and a gateway (set up when the first of
its blocks runs, stopped when pytest leaves the file); the mock upstream and etcd are
started once, the first time any `.t` block runs, and stopped when the session ends. A block
failure is reported the Test::Nginx way: block name, request, expected vs got.

Environment:
  GATEWAY_TEST_BIN   run this CLI instead of bin/gateway (e.g. an installed copy)
  GATEWAY_TEST_KEEP  keep every prefix (failed files' prefixes are always kept)
  GATEWAY_TEST_PLUGINS  set here: t/lib/plugins, the test-only plugin modules
  GATEWAY_TEST_REDIS_PORT, GATEWAY_TEST_REDIS_CLUSTER  set here: the session's private
                     redis-server port and 3-node cluster ("127.0.0.1:p1,..."; _JSON:
                     the same as a JSON array; the cluster starts when a block first
                     names it), see
                     t/lib/redis_server.py; `--- admin` bodies use ${{env NAME}}
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
#: test-only plugin modules (t/lib/plugins), for `apisix.extra_plugin_paths` in .t configs
os.environ.setdefault("GATEWAY_TEST_PLUGINS", str(REPO / "t" / "lib" / "plugins"))

from t.lib import runner  # noqa: E402
from t.lib.etcd_server import EtcdServer  # noqa: E402
from t.lib.mock_upstream import MockUpstream  # noqa: E402
from t.lib.redis_server import LAZY_ENV, RedisCluster, RedisServer, find_redis  # noqa: E402
from t.lib.registry import BlockFailure  # noqa: E402
from t.lib.tparser import Block, TParseError, parse_file, select_blocks  # noqa: E402

_session: runner.Session | None = None
_etcd: EtcdServer | None = None
_mock: MockUpstream | None = None
_redis: list[RedisServer | RedisCluster] = []
_files: list[runner.FileState] = []


def shared_session() -> runner.Session:
    """Mock upstream + etcd, started on first use and kept for the whole pytest session."""
    global _session, _etcd, _mock
    if _session is None:
        _mock = MockUpstream()
        _mock.start()
        _etcd = EtcdServer()
        try:
            _etcd.start()
        except Exception:
            _mock.stop()
            _mock = None
            raise
        os.environ["GATEWAY_TEST_ETCD"] = _etcd.url
        _start_redis()
        _session = runner.Session(_mock, _etcd.url)
    return _session


def _start_redis() -> None:
    """A private redis-server (GATEWAY_TEST_REDIS_PORT) and a 3-node cluster
    (GATEWAY_TEST_REDIS_CLUSTER: "host:port,..."). Without redis-server the variables stay
    unset and the blocks that name them fail saying so."""
    binary = find_redis()
    if binary is None:
        warnings.warn("redis-server is not installed: the Redis-backed tests will fail")
        return
    server = RedisServer(binary)
    try:
        server.start()
    except Exception as e:  # noqa: BLE001 - the other tests can still run
        warnings.warn(f"the test redis-server did not start: {e}")
        return
    _redis.append(server)
    os.environ["GATEWAY_TEST_REDIS_PORT"] = str(server.port)

    names = ("GATEWAY_TEST_REDIS_CLUSTER", "GATEWAY_TEST_REDIS_CLUSTER_JSON")

    def start_cluster() -> None:   # ~2 s: only for a session whose blocks name it
        for name in names:
            LAZY_ENV.pop(name, None)
        cluster = RedisCluster(binary)
        try:
            cluster.start()
        except Exception as e:  # noqa: BLE001 - the plain server's tests can still run
            warnings.warn(f"the test redis cluster did not start: {e}")
            return
        _redis.append(cluster)
        os.environ["GATEWAY_TEST_REDIS_CLUSTER"] = ",".join(cluster.addresses)
        os.environ["GATEWAY_TEST_REDIS_CLUSTER_JSON"] = json.dumps(cluster.addresses)
    for name in names:
        LAZY_ENV[name] = start_cluster


def _stop_everything() -> None:
    global _session, _etcd, _mock
    for state in list(_files):
        try:
            state.teardown()
        except Exception as e:  # teardown must reach etcd and the mock regardless
            print(f"harness: stopping the gateway in {state.prefix} failed: {e}",
                  file=sys.stderr)
    _files.clear()
    if _etcd is not None:
        _etcd.stop()
    if _mock is not None:
        _mock.stop()
    for server in _redis:
        server.stop()
    _redis.clear()
    _session = _etcd = _mock = None


atexit.register(_stop_everything)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _stop_everything()


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix == ".t":
        return TFileCollector.from_parent(parent, path=file_path)
    return None


class TFileCollector(pytest.File):
    """A `.t` file; parsed once here, so a grammar error fails collection with file:line."""

    state: runner.FileState | None = None

    def collect(self) -> Iterator[pytest.Item]:
        try:
            self.tfile = parse_file(self.path)
        except TParseError as e:
            raise self.CollectError(str(e)) from None
        if any(b.only for b in self.tfile.blocks):
            warnings.warn(f"{self.path}: a block is marked --- ONLY; the others are skipped")
        seen: dict[str, int] = {}
        for block, reason in select_blocks(self.tfile.blocks):
            n = seen[block.name] = seen.get(block.name, 0) + 1
            name = block.name if n == 1 else f"{block.name} #{n}"
            item = TBlockItem.from_parent(self, name=name, block=block)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
            yield item

    def setup(self) -> None:
        self.state = runner.FileState(self.tfile, shared_session())
        _files.append(self.state)

    def teardown(self) -> None:
        state, self.state = self.state, None
        if state is None:
            return
        if state in _files:
            _files.remove(state)
        problem = state.teardown()
        if problem:
            warnings.warn(f"{self.path}: {problem}")
        if state.failed:
            print(f"\n{self.path}: prefix kept for inspection: {state.prefix}",
                  file=sys.stderr)


class TBlockItem(pytest.Item):
    def __init__(self, *, block: Block, **kw: object) -> None:
        super().__init__(**kw)
        self.block = block

    def runtest(self) -> None:
        parent = self.parent
        assert isinstance(parent, TFileCollector) and parent.state is not None
        try:
            runner.run_block(parent.state, self.block)
        except BaseException:
            parent.state.failed = True
            raise

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: object = None) -> str:
        if excinfo.errisinstance(BlockFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.block.line - 1, self.name
