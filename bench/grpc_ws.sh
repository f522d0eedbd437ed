#!/usr/bin/env bash
# gRPC unary calls/s and the WebSocket echo round trip, through sidecar and
# direct (see bench/grpc_ws.py).
#   bench/grpc_ws.sh [build/sidecar] [--duration 3] [--runs 3] [--ws-messages 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/sidecar
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then bin=$1; shift; fi
exec /usr/bin/python3 bench/grpc_ws.py "$bin" "$@"
