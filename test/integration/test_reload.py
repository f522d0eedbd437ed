#!/usr/bin/python3
"""Config reloads (SIGHUP and watch: true) under load: nothing lost, nothing
refused, an invalid config keeps the old one serving."""
import os
import re
import signal
import subprocess
import threading
import time
import unittest

from harness import Sidecar, Upstream, curl, run_tests, wait_for

CONFIG = """
workers: 2
{watch}
clusters:
  - {{ name: a, endpoints: [ "{a}" ] }}
  - {{ name: b, endpoints: [ "{b}" ] }}
listeners:
  - name: inbound
    address: 127.0.0.1:{port}
    routes:
      - match: {{ prefix: /hello }}
        cluster: {cluster}
      - match: {{ prefix: /gen{gen} }}
        cluster: a
"""


class ReloadTest(unittest.TestCase):
    def setUp(self):
        self.a, self.b = Upstream(), Upstream()
        self.addCleanup(self.a.stop)
        self.addCleanup(self.b.stop)

    def config(self, cluster="a", gen=0, port=0, watch=False):
        return CONFIG.format(a=self.a.address, b=self.b.address, cluster=cluster, gen=gen,
                             port=port, watch="watch: true" if watch else "")

    def rewrite(self, sc, text):
        # Write to a temporary name and rename, as a ConfigMap update does.
        tmp = sc.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("admin: { address: 127.0.0.1:0 }\n" + text)
        os.rename(tmp, sc.config_path)

    def served_by(self, sc):
        before = (self.a.stats()["requests"], self.b.stats()["requests"])
        rc, out, err = curl(sc.url("/hello"))
        self.assertEqual(out, b"hello\n", err)
        after = (self.a.stats()["requests"], self.b.stats()["requests"])
        return "a" if after[0] - before[0] == 2 else "b"

    def test_sighup_switches_routes(self):
        sc = Sidecar(self.config("a"))
        self.addCleanup(sc.stop)
        self.assertEqual(self.served_by(sc), "a")
        port = sc.port()
        self.rewrite(sc, self.config("b", port=port))
        sc.signal(signal.SIGHUP)
        wait_for(lambda: "config reloaded (SIGHUP)" in sc.output(), 5, what="the reload")
        self.assertEqual(self.served_by(sc), "b")

    def test_invalid_reload_keeps_serving(self):
        sc = Sidecar(self.config("a"))
        self.addCleanup(sc.stop)
        port = sc.port()
        with open(sc.config_path, "a") as f:
            f.write("bogus_key: 1\n")
        sc.signal(signal.SIGHUP)
        wait_for(lambda: "reload (SIGHUP) failed" in sc.output(), 5, what="the failed reload")
        self.assertRegex(sc.output(), re.escape(sc.config_path) + r":\d+:1: unknown key 'bogus_key'")
        self.assertEqual(self.served_by(sc), "a")
        self.assertEqual(sc.port(), port)
        self.assertEqual(sc.admin_get("/ready")[0], 200)

    def test_watch_reloads_on_file_change(self):
        sc = Sidecar(self.config("a", watch=True))
        self.addCleanup(sc.stop)
        self.assertEqual(self.served_by(sc), "a")
        self.rewrite(sc, self.config("b", port=sc.port(), watch=True))
        wait_for(lambda: "config reloaded (config file changed)" in sc.output(), 5,
                 what="the reload on file change")
        self.assertEqual(self.served_by(sc), "b")

    def test_moved_listener_gets_a_new_socket(self):
        sc = Sidecar(self.config("a"))
        self.addCleanup(sc.stop)
        old = sc.port()
        self.rewrite(sc, self.config("a", port=0).replace("127.0.0.1:0", "127.0.0.2:0"))
        sc.signal(signal.SIGHUP)
        wait_for(lambda: "config reloaded" in sc.output(), 5, what="the reload")
        listeners = __import__("json").loads(sc.admin_get("/listeners")[1])
        self.assertTrue(listeners[0]["address"].startswith("127.0.0.2:"), listeners)
        rc, out, err = curl(f"http://{listeners[0]['address']}/hello")
        self.assertEqual(out, b"hello\n")
        rc, out, err = curl(f"http://127.0.0.1:{old}/hello")
        self.assertNotEqual(rc, 0)  # the old address is closed

    def test_fifty_reloads_under_load_lose_nothing(self):
        sc = Sidecar(self.config("a"))
        self.addCleanup(sc.stop)
        port = sc.port()
        stop = threading.Event()
        failures = []
        fresh = [0]

        def new_connections():
            # A new connection per request: a refused connection would show here.
            while not stop.is_set():
                rc, out, err = curl(sc.url("/hello"), timeout=10)
                if out != b"hello\n":
                    failures.append((rc, out, err))
                fresh[0] += 1

        t = threading.Thread(target=new_connections)
        t.start()
        wrk = subprocess.Popen(["wrk", "-t1", "-c8", "-d8s", sc.url("/hello")],
                               stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        for gen in range(1, 51):
            self.rewrite(sc, self.config("b" if gen % 2 else "a", gen=gen, port=port))
            sc.signal(signal.SIGHUP)
            wait_for(lambda: sc.output().count("config reloaded") >= gen, 5,
                     what=f"reload {gen}")
            time.sleep(0.1)
        out, _ = wrk.communicate(timeout=30)
        stop.set()
        t.join()
        self.assertEqual(failures, [])
        self.assertGreater(fresh[0], 20)
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        self.assertGreater(requests, 1000, out)
        self.assertNotIn("Socket errors", out)
        self.assertNotIn("Non-2xx", out)
        self.assertEqual(sc.output().count("config reloaded"), 50)


if __name__ == "__main__":
    run_tests()
