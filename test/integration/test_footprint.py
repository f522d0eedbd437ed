#!/usr/bin/python3
"""The idle process (issue 17): what a sidecar maps and runs depends on its
config. Without a security filter it maps neither libcrypto nor libxcrypt
(their work lives in libsidecar-crypto.so, loaded when a config has
jwt_authn, api_key, basic_auth or rate_limit); without TLS no libssl;
without health checks, outlier detection or DNS discovery no health thread.
With them, the module is loaded and works (an API key is checked through
it, a health check runs). The figures (RSS per mapping) are in bench/idle.sh,
not here: only what a process maps and runs is stable enough to assert."""
import os
import signal
import tempfile
import unittest
import urllib.error
import urllib.request

from harness import Sidecar, Upstream, run_tests, wait_for


def mapped_files(pid):
    names = set()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith("/"):
                names.add(os.path.basename(parts[5].strip()))
    return names


def maps(pid, prefix):
    return any(n.startswith(prefix) for n in mapped_files(pid))


def thread_names(pid):
    names = []
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/comm") as f:
            names.append(f.read().strip())
    return names


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


class FootprintTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = Upstream()

    @classmethod
    def tearDownClass(cls):
        cls.upstream.stop()

    def test_plain_config_maps_no_crypto_and_runs_no_health_thread(self):
        sc = Sidecar(f"""
workers: 2
clusters:
  - name: app
    endpoints: [ "{self.upstream.address}" ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    filters:
      - name: headers
        config: {{ response_headers_to_add: [ {{ name: x-through, value: headers-filter }} ] }}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
""")
        try:
            self.assertEqual(get(sc.url("/hello")), 200)
            pid = sc.proc.pid
            for lib in ("libcrypto.so", "libssl.so", "libcrypt.so", "libsidecar-"):
                self.assertFalse(maps(pid, lib), f"{lib} is mapped: {sorted(mapped_files(pid))}")
            names = thread_names(pid)
            self.assertNotIn("health", names)
            self.assertEqual(sum(n.startswith("worker-") for n in names), 2, names)
        finally:
            sc.stop()

    def test_security_filter_loads_the_crypto_module(self):
        tmp = tempfile.TemporaryDirectory(prefix="sidecar-footprint-")
        keys = os.path.join(tmp.name, "keys")
        with open(keys, "w") as f:
            f.write("billing: key-billing-1\n")
        sc = Sidecar(f"""
workers: 1
clusters:
  - name: app
    endpoints: [ "{self.upstream.address}" ]
    health_checks:
      - tcp: {{}}
        interval: 200ms
        timeout: 500ms
listeners:
  - name: inbound
    address: 127.0.0.1:0
    filters:
      - name: api_key
        config: {{ keys_file: {keys} }}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
""")
        try:
            pid = sc.proc.pid
            self.assertTrue(maps(pid, "libsidecar-crypto.so"), sorted(mapped_files(pid)))
            self.assertTrue(maps(pid, "libcrypto.so"))
            self.assertFalse(maps(pid, "libssl.so"))  # no TLS in this config
            self.assertEqual(get(sc.url("/hello"), {"X-Api-Key": "key-billing-1"}), 200)
            self.assertEqual(get(sc.url("/hello"), {"X-Api-Key": "key-billing-2"}), 401)
            self.assertIn("health", thread_names(pid))
            wait_for(lambda: '"healthy"' in sc.admin_get("/clusters")[1], what="a healthy endpoint")
        finally:
            sc.stop()
            tmp.cleanup()

    def test_health_thread_starts_on_a_reload_that_needs_it(self):
        sc = Sidecar(f"""
workers: 1
watch: false
clusters:
  - name: app
    endpoints: [ "{self.upstream.address}" ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
""")
        try:
            self.assertNotIn("health", thread_names(sc.proc.pid))
            with open(sc.config_path) as f:
                text = f.read()
            text = text.replace(f'    endpoints: [ "{self.upstream.address}" ]\n',
                                f'    endpoints: [ "{self.upstream.address}" ]\n'
                                "    health_checks:\n"
                                "      - tcp: {}\n"
                                "        interval: 200ms\n"
                                "        timeout: 500ms\n")
            with open(sc.config_path, "w") as f:
                f.write(text)
            sc.signal(signal.SIGHUP)
            wait_for(lambda: "health" in thread_names(sc.proc.pid), what="the health thread")
            wait_for(lambda: '"healthy"' in sc.admin_get("/clusters")[1], what="a healthy endpoint")
            self.assertEqual(get(sc.url("/hello")), 200)
        finally:
            sc.stop()


if __name__ == "__main__":
    run_tests()
