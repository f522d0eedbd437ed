#!/usr/bin/env bash
# The TCP proxy benchmark (see bench/tcp.py): 1 GiB each way and
# redis-benchmark through sidecar (splice and copy) and haproxy mode tcp.
#   bench/tcp.sh [build/sidecar] [--runs 3] [--gib 1] [--only sidecar,sidecar-copy]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/sidecar
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then bin=$1; shift; fi
exec /usr/bin/python3 bench/tcp.py "$bin" "$@"
