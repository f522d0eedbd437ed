#!/usr/bin/env bash
# The TLS benchmark (see bench/tls.py): sidecar, nginx and haproxy terminating
# TLS in front of one nginx upstream, ECDSA P-256 and RSA 2048, in one run.
#   bench/tls.sh [build/sidecar] [--duration 5] [--runs 3] [--idle 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/sidecar
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then bin=$1; shift; fi
exec /usr/bin/python3 bench/tls.py "$bin" "$@"
