#!/usr/bin/env bash
# Runs the sidecar with its embedded default config in front of the demo app.
set -euo pipefail
bin=${1:-build/sidecar}
cat <<MSG

  sidecar demo: the app (examples/demo/app.py) listens on 127.0.0.1:8080,
  the sidecar proxies 0.0.0.0:8000 to it; admin on 127.0.0.1:9901.

    curl http://127.0.0.1:8000/hello        the app, through the sidecar
    curl http://127.0.0.1:9901/ready        the sidecar's readiness

  Ctrl-C stops the sidecar, which drains and then stops the app.

MSG
exec "$bin" run -- /usr/bin/python3 examples/demo/app.py
