#!/usr/bin/env bash
# Memory per connection (see bench/connmem.py): sidecar, nginx and haproxy,
# one worker each, same upstream; idle keep-alive, TLS, HTTP/2 and active.
#   bench/connmem.sh [build/sidecar] [-n 5000] [--only idle,tls,h2,active]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/sidecar
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then bin=$1; shift; fi
exec /usr/bin/python3 bench/connmem.py "$bin" "$@"
