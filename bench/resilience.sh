#!/usr/bin/env bash
# The resilience benchmark (see bench/resilience.py): least_request + health
# checks + outlier detection + retries against plain round robin, and haproxy
# (leastconn, httpchk, retry-on) and nginx (least_conn, proxy_next_upstream).
#   bench/resilience.sh [build/sidecar] [--duration 5] [--runs 3]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/sidecar
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then bin=$1; shift; fi
exec /usr/bin/python3 bench/resilience.py "$bin" "$@"
