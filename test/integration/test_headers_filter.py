#!/usr/bin/python3
"""The headers filter through the real binary: variables in values
(%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%, %REQ(x)%, %UPSTREAM_HOST%,
%START_TIME%, %HOSTNAME%) and Envoy's append_action, against an upstream
that echoes the request fields it received; %HOSTNAME% and %% in the
access log, which shares the parser."""
import json
import os
import socket
import subprocess
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import BIN, Sidecar, curl, run_tests, wait_for


class Echo(BaseHTTPRequestHandler):
    """Answers with the received request fields as a JSON list of [name, value]."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        body = json.dumps([[k.lower(), v] for k, v in self.headers.items()]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Origin", "kept")
        self.end_headers()
        self.wfile.write(body)


def start_echo(test):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    test.addCleanup(stop)
    return f"127.0.0.1:{server.server_address[1]}"


def fetch(sc, path, *args):
    """(status, response headers as a list of (lower-case name, value), echoed request fields)."""
    rc, out, err = curl("-D", "-", *args, sc.url(path))
    if rc != 0:
        raise AssertionError(f"curl failed ({rc}): {err}")
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip().lower(), v.strip()))
    return int(lines[0].split()[1]), headers, json.loads(body)


def values(fields, name):
    return [v for k, v in fields if k == name]


class HeadersFilterTest(unittest.TestCase):
    def test_variables_and_append_actions(self):
        origin = start_echo(self)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        log_path = os.path.join(tmp.name, "access.log")
        sc = Sidecar(f"""
access_log: {{ path: "{log_path}", format: text, text_format: "%HOSTNAME% 100%% %REQ(:PATH)%" }}
clusters: [ {{ name: app, endpoints: [ "{origin}" ] }} ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    filters:
      - name: headers
        config:
          request_headers_to_add:
            - name: x-real-ip
              value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"
              append_action: OVERWRITE_IF_EXISTS_OR_ADD
            - {{ name: x-peer, value: "%DOWNSTREAM_REMOTE_ADDRESS%" }}
            - {{ name: x-copied, value: "in=%REQ(x-in)%, 100%%" }}
            - {{ name: x-missing, value: "%REQ(x-nothing)%" }}
            - {{ name: x-upstream-req, value: "%UPSTREAM_HOST%" }}
            - {{ name: x-env, value: prod, append_action: ADD_IF_ABSENT }}
            - {{ name: x-tag, value: added }}
            - {{ name: x-start, value: "%START_TIME%" }}
            - {{ name: x-host, value: "%HOSTNAME%" }}
          response_headers_to_add:
            - {{ name: x-upstream, value: "%UPSTREAM_HOST%" }}
            - {{ name: x-origin, value: replaced, append_action: OVERWRITE_IF_EXISTS }}
            - {{ name: x-absent, value: no, append_action: OVERWRITE_IF_EXISTS }}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
""")
        self.addCleanup(sc.stop)
        status, resp, req = fetch(sc, "/x", "-H", "x-in: hello", "-H", "x-real-ip: 6.6.6.6",
                                  "-H", "x-env: staging", "-H", "x-tag: client")
        self.assertEqual(status, 200)
        # OVERWRITE_IF_EXISTS_OR_ADD replaces the client's field.
        self.assertEqual(values(req, "x-real-ip"), ["127.0.0.1"])
        self.assertRegex(values(req, "x-peer")[0], r"^127\.0\.0\.1:\d+$")
        self.assertEqual(values(req, "x-copied"), ["in=hello, 100%"])
        # An empty value (a missing field; no upstream yet) adds nothing.
        self.assertEqual(values(req, "x-missing"), [])
        self.assertEqual(values(req, "x-upstream-req"), [])
        # ADD_IF_ABSENT keeps the client's; the default appends.
        self.assertEqual(values(req, "x-env"), ["staging"])
        self.assertEqual(values(req, "x-tag"), ["client", "added"])
        self.assertRegex(values(req, "x-start")[0],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(values(req, "x-host"), [socket.gethostname()])
        # The response: the endpoint of the attempt, overwrite of the origin's field.
        self.assertEqual(values(resp, "x-upstream"), [origin])
        self.assertEqual(values(resp, "x-origin"), ["replaced"])
        self.assertEqual(values(resp, "x-absent"), [])

        # Without the client's fields: added.
        _, _, req = fetch(sc, "/y")
        self.assertEqual(values(req, "x-env"), ["prod"])
        self.assertEqual(values(req, "x-copied"), ["in=, 100%"])

        # The access log shares the parser: %HOSTNAME% and %% there too.
        host = socket.gethostname()

        def logged():
            if not os.path.exists(log_path):
                return False
            with open(log_path) as f:
                return f"{host} 100% /y\n" in f.read()
        wait_for(logged, what="access log line")

        # The same over HTTP/2 (h2c prior knowledge) from the client.
        status, resp, req = fetch(sc, "/z", "--http2-prior-knowledge", "-H", "x-in: h2",
                                  "-H", "x-real-ip: 6.6.6.6", "-H", "x-env: staging")
        self.assertEqual(status, 200)
        self.assertEqual(values(req, "x-real-ip"), ["127.0.0.1"])
        self.assertEqual(values(req, "x-copied"), ["in=h2, 100%"])
        self.assertEqual(values(req, "x-env"), ["staging"])
        self.assertEqual(values(resp, "x-upstream"), [origin])
        self.assertEqual(values(resp, "x-origin"), ["replaced"])

    def test_unknown_variable_is_a_config_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "bad.yaml")
            with open(cfg, "w") as f:
                f.write("clusters: [ { name: app, endpoints: [ '127.0.0.1:1' ] } ]\n"
                        "listeners:\n  - name: in\n    address: 127.0.0.1:0\n    filters:\n"
                        "      - { name: headers, config: { request_headers_to_add: "
                        "[ { name: x-a, value: 'a%NO_SUCH%' } ] } }\n"
                        "    routes: [ { match: { prefix: / }, cluster: app } ]\n")
            p = subprocess.run([BIN, "validate", "-c", cfg], capture_output=True, text=True,
                               timeout=30)
        self.assertEqual(p.returncode, 64)
        self.assertIn(f"{cfg}:6:", p.stdout + p.stderr)
        self.assertIn("unknown operator %NO_SUCH%", p.stdout + p.stderr)


if __name__ == "__main__":
    run_tests()
