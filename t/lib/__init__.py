"""The `.t` test harness: parser, safe evaluator, mock upstream, etcd, HTTP client, runner.

`t/conftest.py` plugs these into pytest; nothing here imports the gateway itself, because the
harness must judge the gateway from the outside (processes, sockets, log files) the way
Test::Nginx judges nginx.
"""
