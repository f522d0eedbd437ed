#!/usr/bin/python3
"""The demo app: a plain HTTP server on $PORT that knows nothing about the
sidecar. It shows what the sidecar added to each request."""
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        added = {k: v for k, v in self.headers.items() if k.lower().startswith("x-")}
        body = json.dumps({
            "message": "hello from the demo app",
            "path": self.path,
            "added_by_the_sidecar": added,
        }, indent=2).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("app:", self.address_string(), fmt % args, flush=True)


# A well-behaved app exits 0 on SIGTERM (the sidecar sends it on shutdown).
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
port = int(os.environ.get("PORT", "8080"))
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
