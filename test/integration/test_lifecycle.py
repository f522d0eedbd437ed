#!/usr/bin/python3
"""Shutdown and the supervised app: SIGTERM lets in-flight requests finish,
the app gets PORT and is stopped with the sidecar."""
import os
import signal
import subprocess
import threading
import time
import unittest

from harness import HERE, PYTHON, Sidecar, Upstream, curl, proxy_config, run_tests, wait_for


class ShutdownTest(unittest.TestCase):
    def test_sigterm_lets_in_flight_requests_finish(self):
        up = Upstream()
        sc = Sidecar(proxy_config(up.address))
        try:
            results = []

            def fetch():
                results.append(curl("-w", " %{http_code}", sc.url("/slow?delay=1")))

            threads = [threading.Thread(target=fetch) for _ in range(5)]
            for t in threads:
                t.start()
            time.sleep(0.3)  # all five are waiting on the upstream
            sc.signal(signal.SIGTERM)
            # Not ready any more, at once.
            code = sc.wait(timeout=10)
            for t in threads:
                t.join()
            self.assertEqual(code, 0, sc.output())
            self.assertEqual(len(results), 5)
            for rc, out, err in results:
                self.assertEqual(out, b"slow\n 200", err)
            self.assertIn("draining", sc.output())
        finally:
            sc.stop()
            up.stop()

    def test_keep_alive_response_during_drain_says_close(self):
        up = Upstream()
        sc = Sidecar(proxy_config(up.address))
        try:
            out = []
            t = threading.Thread(target=lambda: out.append(
                curl("-D", "-", "-o", "/dev/null", sc.url("/slow?delay=0.8"))))
            t.start()
            time.sleep(0.3)
            sc.signal(signal.SIGTERM)
            t.join()
            rc, headers, err = out[0]
            self.assertIn(b"connection: close", headers.lower())
            self.assertEqual(sc.wait(), 0)
        finally:
            sc.stop()
            up.stop()

    def test_drain_timeout_bounds_shutdown(self):
        up = Upstream()
        sc = Sidecar(proxy_config(up.address) + "drain: { timeout: 500ms }\n")
        try:
            t = threading.Thread(target=lambda: curl(sc.url("/slow?delay=5")))
            t.start()
            time.sleep(0.3)
            start = time.monotonic()
            sc.signal(signal.SIGTERM)
            self.assertEqual(sc.wait(), 0)
            self.assertLess(time.monotonic() - start, 3)
            t.join()
        finally:
            sc.stop()
            up.stop()


class AppTest(unittest.TestCase):
    def test_app_gets_port_and_stops_with_the_sidecar(self):
        # The embedded config's app port is 8080; this config moves it.
        config = """
workers: 1
app: { port: %d, stop_timeout: 5s }
clusters: [ { name: app, endpoints: [ "127.0.0.1:%d" ] } ]
listeners: [ { name: inbound, address: "127.0.0.1:0", routes: [ { cluster: app } ] } ]
"""
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        sc = Sidecar(config % (port, port), app=[PYTHON, os.path.join(HERE, "upstream.py")])
        try:
            def served():
                rc, out, err = curl(sc.url("/hello"))
                return out == b"hello\n"
            wait_for(served, 10, 0.1, "the app to answer through the sidecar")
            sc.signal(signal.SIGTERM)
            code = sc.wait()
            # The app was stopped by SIGTERM; the sidecar reports its exit code.
            self.assertIn(code, (0, 143), sc.output())
            self.assertIn("the app exited", sc.output())
        finally:
            sc.stop()

    def test_app_exit_code_becomes_the_sidecars(self):
        sc = Sidecar(proxy_config("127.0.0.1:9"), app=["sh", "-c", "sleep 0.5; exit 3"])
        try:
            self.assertEqual(sc.wait(), 3, sc.output())
        finally:
            sc.stop()

    def test_missing_app_command(self):
        sc = Sidecar(proxy_config("127.0.0.1:9"), app=["/nonexistent/app"], wait=False)
        try:
            self.assertEqual(sc.wait(), 70, sc.output())
            self.assertIn("cannot start '/nonexistent/app'", sc.output())
        finally:
            sc.stop()


if __name__ == "__main__":
    run_tests()
