#!/usr/bin/env bash
# The HTTP/2 proxy benchmark (see bench/h2.py): sidecar, nginx (http2) and
# haproxy (proto h2) in front of one nginx upstream, h2load -c 10 -m 10.
#   bench/h2.sh [build/sidecar] [--duration 5] [--runs 3] [--only sidecar,haproxy]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/sidecar
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then bin=$1; shift; fi
exec /usr/bin/python3 bench/h2.py "$bin" "$@"
