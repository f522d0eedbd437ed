#!/usr/bin/python3
"""Shutdown and the supervised app: SIGTERM lets in-flight requests finish,
the app gets PORT and is stopped with the sidecar."""
import json
import os
import re
import signal
import subprocess
import threading
import time
import unittest

from harness import (BIN, HERE, PYTHON, Sidecar, Upstream, curl, free_port, proxy_config,
                     run_tests, wait_for)


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
            self.assertIn("exited with code", sc.output())
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



class OrderTest(unittest.TestCase):
    def test_app_starts_after_the_listener_accepts_and_a_job_ends_the_sidecar(self):
        port = free_port()
        result = os.path.join(HERE, f".check-{os.getpid()}")
        self.addCleanup(lambda: os.path.exists(result) and os.unlink(result))
        sc = Sidecar(f"""
workers: 1
clusters: [ {{ name: app, endpoints: [ "127.0.0.1:9" ] }} ]
listeners: [ {{ name: inbound, address: "127.0.0.1:{port}", routes: [ {{ cluster: app }} ] }} ]
""", app=[PYTHON, os.path.join(HERE, "apps", "check_listener.py"), str(port), result], wait=False)
        try:
            self.assertEqual(sc.wait(), 0, sc.output())  # the Job's exit code
            with open(result) as f:
                self.assertEqual(f.read(), "ok")
        finally:
            sc.stop()

    def test_ready_follows_the_app_and_restart_always_brings_it_back(self):
        port = free_port()
        sc = Sidecar(f"""
workers: 1
app:
  port: {port}
  ready: {{ http_path: /hello, period: 100ms, timeout: 500ms }}
  restart: always
  backoff: {{ initial: 200ms, max: 1s }}
clusters: [ {{ name: app, endpoints: [ "127.0.0.1:{port}" ] }} ]
listeners: [ {{ name: inbound, address: "127.0.0.1:0", routes: [ {{ cluster: app }} ] }} ]
""", app=["sh", "-c", f"sleep 1; exec {PYTHON} {os.path.join(HERE, 'upstream.py')}"])
        try:
            self.assertEqual(sc.admin_get("/ready")[0], 503)  # the app is not listening yet
            wait_for(lambda: sc.admin_get("/ready")[0] == 200, 10, 0.05, "ready")
            pid = int(re.findall(r"app started: pid (\d+)", sc.output())[-1])
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: sc.admin_get("/ready")[0] == 503, 5, 0.02, "not ready after the crash")
            wait_for(lambda: "restarting the app in 200ms" in sc.output(), 5, what="the restart")
            wait_for(lambda: sc.admin_get("/ready")[0] == 200, 10, 0.05, "ready again")
            rc, out, err = curl(sc.url("/hello"))
            self.assertEqual(out, b"hello\n")
        finally:
            sc.stop()

    def test_sigterm_under_load_loses_nothing_and_the_app_stops_after_inbound_drained(self):
        port = free_port()
        report = os.path.join(HERE, f".sigterm-{os.getpid()}")
        self.addCleanup(lambda: os.path.exists(report) and os.unlink(report))
        sc = Sidecar(f"""
workers: 2
app: {{ port: {port} }}
drain: {{ delay: 2s, timeout: 5s }}
clusters: [ {{ name: app, endpoints: [ "127.0.0.1:{port}" ] }} ]
listeners: [ {{ name: inbound, address: "127.0.0.1:0", routes: [ {{ cluster: app }} ] }} ]
""", app=[PYTHON, os.path.join(HERE, "upstream.py"), "--sigterm-report", report])
        try:
            wait_for(lambda: sc.admin_get("/ready")[0] == 200, 10, 0.05, "ready")
            wrk = subprocess.Popen(["wrk", "-t1", "-c8", "-d1500ms", sc.url("/hello")],
                                   stdout=subprocess.PIPE, text=True)
            time.sleep(0.5)
            sc.signal(signal.SIGTERM)
            time.sleep(0.1)
            self.assertEqual(sc.admin_get("/ready")[0], 503)  # at once
            slow = []
            t = threading.Thread(target=lambda: slow.append(
                curl("-w", " %{http_code}", sc.url("/slow?delay=2.5"))))
            t.start()  # in flight when the inbound drain begins
            out, _ = wrk.communicate(timeout=30)
            self.assertNotIn("Socket errors", out)
            self.assertNotIn("Non-2xx", out)
            self.assertEqual(sc.wait(timeout=20), 0, sc.output())
            t.join()
            self.assertEqual(slow[0][1], b"slow\n 200")
            with open(report) as f:
                self.assertEqual(json.load(f)["in_flight"], 0)  # inbound had drained
            log = sc.output()
            self.assertLess(log.index("inbound listeners drained"), log.index("stopping the app"))
        finally:
            sc.stop()

    def test_outbound_listener_serves_the_app_until_it_exits(self):
        up = Upstream()
        out_port = free_port()
        sc = Sidecar(f"""
workers: 1
drain: {{ delay: 500ms }}
clusters:
  - {{ name: app, endpoints: [ "127.0.0.1:9" ] }}
  - {{ name: svc, endpoints: [ "{up.address}" ] }}
listeners:
  - {{ name: inbound, address: "127.0.0.1:0", routes: [ {{ cluster: app }} ] }}
  - name: outbound
    direction: outbound
    address: "127.0.0.1:{out_port}"
    routes: [ {{ cluster: svc }} ]
""", app=[PYTHON, os.path.join(HERE, "apps", "outbound_on_sigterm.py"),
          f"http://127.0.0.1:{out_port}/hello"])
        try:
            sc.signal(signal.SIGTERM)
            # The app's exit code: 0 when its call during shutdown got through.
            self.assertEqual(sc.wait(), 0, sc.output())
        finally:
            sc.stop()
            up.stop()

    def test_quit_without_an_app(self):
        up = Upstream()
        sc = Sidecar(proxy_config(up.address))
        try:
            status, body = sc.admin_get("/quit", method="POST")
            self.assertEqual(status, 200)
            self.assertEqual(sc.wait(), 0)
            self.assertIn("POST /quit", sc.output())
        finally:
            sc.stop()
            up.stop()

    def test_mutations_need_post(self):
        up = Upstream()
        sc = Sidecar(proxy_config(up.address))
        try:
            self.assertEqual(sc.admin_get("/quit")[0], 405)
            self.assertEqual(sc.admin_get("/drain")[0], 405)
            self.assertEqual(sc.admin_get("/ready")[0], 200)
            self.assertEqual(sc.admin_get("/drain", method="POST")[0], 200)
            self.assertEqual(sc.admin_get("/ready")[0], 503)
            rc, out, err = curl(sc.url("/hello"))
            self.assertNotEqual(rc, 0)  # no longer accepting
        finally:
            sc.stop()
            up.stop()


@unittest.skipUnless(os.geteuid() == 0, "needs root for a PID namespace")
class Pid1Test(unittest.TestCase):
    def test_orphans_are_reaped_when_pid_1(self):
        import tempfile
        d = tempfile.mkdtemp(prefix="sidecar-pid1-")
        addr = os.path.join(d, "admin")
        cfg = os.path.join(d, "c.yaml")
        with open(cfg, "w") as f:
            f.write(proxy_config("127.0.0.1:9").replace("workers: 2", "admin: { address: 127.0.0.1:0 }\nworkers: 1"))
        p = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", BIN, "run", "-c", cfg,
                              "--admin-address-path", addr, "--",
                              "sh", os.path.join(HERE, "apps", "orphans.sh")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: os.path.exists(addr), 10, what="the sidecar")
            with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
                sidecar_pid = int(f.read().split()[0])
            time.sleep(1.5)  # the orphaned sleeps have exited
            zombies = []
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/status") as f:
                        status = f.read()
                except OSError:
                    continue
                ppid = int(re.search(r"PPid:\s+(\d+)", status).group(1))
                if ppid == sidecar_pid and re.search(r"State:\s+Z", status):
                    zombies.append(entry)
            self.assertEqual(zombies, [])
            self.assertEqual(p.wait(timeout=15), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()


if __name__ == "__main__":
    run_tests()
