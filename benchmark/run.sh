#!/bin/sh
# make bench: the gateway against nginx on this machine (benchmark/bench.py says how).
# Installs what it needs: Debian's wrk and nginx (as root or with sudo) and the project's
# virtualenv (make venv). Settings come from the environment, e.g.
#   BENCH_DURATION=5s BENCH_ROUNDS=1 benchmark/run.sh --out /tmp/quick.json
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
PATH="$PATH:/usr/sbin:/sbin"
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
	# nginx's package may start the system service; we never use it (bench.py runs its own)
	$SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk nginx
fi
[ -x .venv/bin/python ] || make venv
exec .venv/bin/python benchmark/bench.py "$@"
