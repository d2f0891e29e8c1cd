# The two commands of the quick start:
#   make run    start the gateway in the foreground with conf/apisix.yaml's example route
#   make test   run the whole .t suite against real master + workers, etcd and upstreams
# Both create .venv and install what they need (Debian packages too, as root).
# Apart from both, `make bench`: the gateway side by side with nginx (benchmark/run.sh).

# Debian's own interpreter when there is one: Debian builds it with its own optimizations and
# links libpython into the binary, and it runs our Python code faster than a locally built
# shared-library interpreter such as pyenv's default build (paired A/B: -12% CPU per request
# on the 4-plugin route; README, Performance). PYTHON=... picks another.
PYTHON ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat setup.cfg | cksum | cut -d' ' -f1)-$(shell echo '$(PYTHON)' | cksum | cut -d' ' -f1)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_PORT ?= 1980

.PHONY: run test unit venv system-deps stop clean bench

venv: $(STAMP)

$(STAMP): setup.cfg
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv; }
	@# a virtualenv made from another interpreter is made again
	@if [ -x $(PY) ] && [ "$$($(PY) -c 'import sys; print(sys.base_prefix)')" != \
		"$$($(PYTHON) -c 'import sys; print(sys.prefix)')" ]; then rm -rf $(VENV); fi
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-*; touch $@

# Debian's etcd-server and redis-server for the tests. Our harness runs its own etcd on ports of
# its own with a temp data dir; Debian's service (2379, started where systemd runs) is stopped
# and disabled so it cannot be mistaken for ours.
system-deps:
	@if ! command -v etcd >/dev/null || ! command -v redis-server >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq etcd-server redis-server; fi
	@if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then \
		$(SUDO) systemctl disable --now etcd >/dev/null 2>&1 || true; fi

run: venv
	@$(PY) t/lib/mock_upstream.py --port $(DEMO_PORT) & demo=$$!; \
	trap 'kill $$demo 2>/dev/null' EXIT INT TERM; \
	echo "demo upstream on 127.0.0.1:$(DEMO_PORT); gateway on :9080 (Ctrl-C stops)"; \
	echo "try: curl -i http://127.0.0.1:9080/hello"; \
	bin/gateway start -f

test: venv system-deps
	$(PY) -m pytest t/ -q

unit: venv
	$(PY) -m pytest t/unit -q

# not part of `make test`: several minutes of load (BENCH_DURATION=5s etc. shorten it)
bench: venv
	benchmark/run.sh

stop:
	bin/gateway stop

clean:
	rm -rf $(VENV) logs/*.log logs/*.pid t/servroot
