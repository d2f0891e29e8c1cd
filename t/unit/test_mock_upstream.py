"""The mock upstream's APISIX conventions, read through the harness's own HTTP client.

Runs on ephemeral ports so it never collides with the session's mock on 1980-1982.
"""

import threading

import pytest

from t.lib.http_client import (HttpError, build_request, exchange, parse_header_lines,
                               parse_request_text)
from t.lib.mock_upstream import MockUpstream, action_name


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    m = MockUpstream(ports=(0, 0))
    m.start()
    m.log_path = str(tmp_path_factory.mktemp("mock") / "error.log")
    yield m
    m.stop()


def get(mock, text, more="", port_index=0, **kw):
    port = mock.bound_ports[port_index]
    res = exchange(build_request(text, more), 1, 5.0, host="127.0.0.1", port=port, **kw)[0]
    assert not isinstance(res, HttpError), res
    return res


def test_action_names():
    assert action_name("/hello") == "hello"
    assert action_name("/a/b.c-d") == "a_b_c_d"


def test_hello_and_friends(mock):
    r = get(mock, "GET /hello")
    assert (r.status, r.text, r.header("content-length")) == (200, "hello world\n", "12")
    assert get(mock, "GET /hello1").text == "hello1 world\n"
    assert get(mock, "GET /status").text == "ok\n"
    assert get(mock, "GET /server_port", port_index=1).text == str(mock.bound_ports[1])
    assert get(mock, "GET /mysleep?seconds=0.01").text == "0.01\n"


def test_unknown_path_is_404_and_logged(mock):
    r = get(mock, "GET /no/such.path")
    assert r.status == 404 and "404 Not Found" in r.text
    with open(mock.log_path) as f:
        assert "undefined path in test server, uri: /no/such.path" in f.read()


def test_uri_lists_headers_sorted_lowercase(mock):
    r = get(mock, "GET /uri", "X-B: 2\nx-a: 1\nX-Forwarded-For: 9.9.9.9")
    assert r.text == ("uri: /uri\nconnection: close\nhost: localhost\nx-a: 1\nx-b: 2\n")


def test_resp_headers_and_echo(mock):
    r = get(mock, "POST /echo\nthe body\n", "resp-X-Extra: yes\nX-Mine: m")
    assert r.text == "the body"                      # the request body is trimmed, as T::N
    assert r.header("x-extra") == "yes" and r.header("x-mine") == "m"
    assert r.header("resp-x-extra") == "yes"         # echo returns request headers too


def test_chunked_response_is_decoded(mock):
    r = get(mock, "GET /hello_chunked")
    assert r.header("transfer-encoding") == "chunked" and r.text == "hello world\n"


def test_chunked_request_body(mock):
    raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    r = exchange(raw, 1, 5.0, host="127.0.0.1", port=mock.bound_ports[0])[0]
    assert r.text == "abcde"


def test_pipelined_keep_alive(mock):
    raws = [build_request("GET /hello", connection="keep-alive"),
            build_request("HEAD /hello1", connection="keep-alive"),
            build_request("GET /status")]
    out = exchange(b"".join(raws), 3, 5.0, heads=[False, True, False], host="127.0.0.1",
                   port=mock.bound_ports[0])
    assert [r.text for r in out] == ["hello world\n", "", "ok\n"]
    assert out[1].header("content-length") == "13"


def test_arrivals_are_observable(mock):
    before = mock.arrivals("/mysleep")
    t = threading.Thread(target=get, args=(mock, "GET /mysleep?seconds=0.3"))
    t.start()
    assert mock.wait_for_arrival("/mysleep", before, 5)
    t.join()
    assert not mock.wait_for_arrival("/mysleep", before + 1, 0.05)


def test_abort_closes_without_response(mock):
    res = exchange(build_request("GET /mysleep?seconds=0&abort=1"), 1, 5.0,
                   host="127.0.0.1", port=mock.bound_ports[0])[0]
    assert isinstance(res, HttpError) and "closed" in str(res)


def test_client_errors():
    res = exchange(b"GET / HTTP/1.1\r\n\r\n", 2, 1.0, host="127.0.0.1", port=1)
    assert all(isinstance(r, HttpError) and "refused" in str(r) for r in res)


def test_request_building():
    assert parse_request_text("# comment\n  GET /x HTTP/1.0\nbody").version == "HTTP/1.0"
    assert parse_request_text("DELETE").target == "/"
    raw = build_request("POST /p\n  {\"a\": 1}\n\n", "Host: h\n# skipped\nX-Y:")
    assert raw == (b"POST /p HTTP/1.1\r\nConnection: close\r\nHost: h\r\nX-Y: \r\n"
                   b"Content-Length: 8\r\n\r\n{\"a\": 1}")
    assert parse_header_lines("A: 1\n\nB:2:3\n") == [("A", "1"), ("B", "2:3")]
    with pytest.raises(ValueError):
        parse_request_text("GET / HTTP/1.1 extra")
