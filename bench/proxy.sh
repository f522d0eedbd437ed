#!/usr/bin/env bash
# The proxy benchmark (see bench/proxy.py): sidecar, nginx, haproxy and caddy
# in front of one nginx upstream, on 127.0.0.1, in one run.
#   bench/proxy.sh [build/sidecar] [--duration 5] [--runs 3] [--only sidecar,haproxy]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/sidecar
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then bin=$1; shift; fi
exec /usr/bin/python3 bench/proxy.py "$bin" "$@"
