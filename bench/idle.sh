#!/usr/bin/env bash
# Idle process memory (see bench/idle.py): smaps_rollup and RSS/PSS/anonymous
# per mapping of `sidecar run` on the embedded config.
#   bench/idle.sh [build/sidecar] [--runs 3] [-c config.yaml] [--env NAME=VALUE]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/sidecar
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then bin=$1; shift; fi
exec /usr/bin/python3 bench/idle.py "$bin" "$@"
