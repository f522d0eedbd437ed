#!/usr/bin/env bash
# The log shipping benchmark (see bench/logship.py): sidecar, rsyslog,
# syslog-ng and `tail -F | socat`, file -> TCP. Run it under the shared CPU
# lock: flock /tmp/sidecar-cpu.lock bench/logship.sh build/sidecar
# SIZE_MIB (1024), RUNS (3) and ROTATE_SECONDS (30) shorten it.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/logship.py" "${1:-build/sidecar}"
