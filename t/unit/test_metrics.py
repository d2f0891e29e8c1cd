"""gateway.worker.metrics: the per-request writes land in prometheus-client's multiprocess
files, the files of several workers are summed, and the text is APISIX's (label order,
no ``_total`` on counters, whole numbers without ``.0``)."""

from __future__ import annotations

import os

import pytest

from gateway.worker import metrics


@pytest.fixture()
def mp_dir(tmp_path, monkeypatch):
    from prometheus_client import values
    monkeypatch.setenv(metrics.ENV, str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())
    return tmp_path


LABELS = ("200", "1", "/hello", "", "", "", "127.0.0.1", "upstream")


def test_series_from_two_workers_are_summed(mp_dir, monkeypatch):
    from prometheus_client import values
    for pid in (101, 102):   # two workers: one file set each
        monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda p=pid: p))
        m = metrics.Metrics()
        m.setup({"plugins": ["prometheus"]})
        series = m.children(("k",), LABELS)
        series.record(3.0, 1.0, 100, 12)
        series.record(700.0, None, 50, 0)
    text = metrics.Metrics().render({"plugins": ["prometheus"], "deployment": {}})
    lines = text.decode().splitlines()
    assert ('apisix_http_status{code="200",route="1",matched_uri="/hello",matched_host="",'
            'service="",consumer="",node="127.0.0.1",request_type="traditional_http",'
            'request_llm_model="",llm_model="",response_source="upstream"} 4') in lines
    rest = ('route="1",service="",consumer="",node="127.0.0.1",request_type="traditional_http",'
            'request_llm_model="",llm_model=""')
    assert 'apisix_http_latency_count{type="request",%s} 4' % rest in lines
    assert 'apisix_http_latency_count{type="upstream",%s} 2' % rest in lines
    assert 'apisix_http_latency_bucket{type="request",%s,le="5"} 2' % rest in lines
    assert 'apisix_http_latency_bucket{type="request",%s,le="1000"} 4' % rest in lines
    assert 'apisix_http_latency_sum{type="apisix",%s} 1404' % rest in lines
    assert 'apisix_bandwidth{type="ingress",%s} 300' % rest in lines
    assert 'apisix_bandwidth{type="egress",%s} 24' % rest in lines
    assert "# TYPE apisix_http_status counter" in lines
    assert any(line.startswith("apisix_node_info{hostname=") for line in lines)


def test_worker_exited_drops_live_gauges(mp_dir, monkeypatch):
    from prometheus_client import values
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: 7))
    m = metrics.Metrics()
    m.setup({"plugins": ["prometheus"]})

    class Server:
        clients: list = []
        accepted = 3
        requests_done = 5
    m.tick(Server())
    assert b"apisix_http_requests_total 5" in m.render({"plugins": [], "deployment": {}})
    metrics.worker_exited(7)
    assert b"apisix_http_requests_total" not in m.render({"plugins": [], "deployment": {}})


def test_prepare_dir_wipes(tmp_path, monkeypatch):
    monkeypatch.delenv(metrics.ENV, raising=False)
    old = tmp_path / "logs" / "prometheus"
    old.mkdir(parents=True)
    (old / "counter_1.db").write_bytes(b"x")
    path = metrics.prepare_dir(str(tmp_path))
    assert path == str(old) and os.listdir(path) == []
    assert os.environ[metrics.ENV] == path


@pytest.mark.parametrize("value, text", [(1.0, "1"), (0.5, "0.5"), (float("inf"), "+Inf"),
                                         (60000.0, "60000")])
def test_number(value, text):
    assert metrics._number(value) == text
