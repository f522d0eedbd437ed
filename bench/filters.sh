#!/usr/bin/env bash
# The filters benchmark (see bench/filters.py): sidecar's local rate limit and
# gzip against nginx (limit_req, gzip) and haproxy (stick table, compression).
#   bench/filters.sh [build/sidecar] [--duration 5] [--runs 3] [--only sidecar,nginx]
#                    [--cases plain,gzip] [--perf DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/sidecar
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then bin=$1; shift; fi
exec /usr/bin/python3 bench/filters.py "$bin" "$@"
