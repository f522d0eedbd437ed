#!/usr/bin/python3
"""The registry module against a real etcd (one member): registration only
while ready, deregistration at step 1 of shutdown, lease expiry after
SIGKILL, a deleted key put back, etcd down for 3 x TTL, and discovery: a
client sidecar's outbound cluster follows the instances registered by
other sidecars (docs/registry.md)."""
import json
import os
import signal
import sys
import time
import unittest
import urllib.request

import harness
from etcdpeer import ETCD, Etcd

TTL = 2  # seconds; the shortest lease the config allows


def registry_status(sc):
    status, body = sc.admin_get("/registry")
    assert status == 200, body
    return json.loads(body)


def server_config(etcd, name, instance, inbound_port, app_port, extra_service=""):
    return f"""
workers: 1
clusters: [ {{ name: app, endpoints: [ "127.0.0.1:{app_port}" ] }} ]
listeners:
  - name: inbound
    address: 127.0.0.1:{inbound_port}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
registry:
  etcd: {{ endpoints: [ {", ".join(etcd.client_urls)} ], ttl: {TTL}s, timeout: 1s }}
  service:
    name: {name}
    instance_id: {instance}
    address: 127.0.0.1
{extra_service}"""


class RegistrationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.etcd = Etcd()

    @classmethod
    def tearDownClass(cls):
        cls.etcd.stop()

    def key(self, service, instance):
        return f"/services/{service}/{instance}"

    def test_registered_only_once_ready_and_removed_before_the_app_stops(self):
        app_port = harness.free_port()
        # The app listens only after a while: until then /ready is 503 and
        # nothing may be registered.
        app = ["/bin/sh", "-c",
               f"sleep 1.5; exec {harness.PYTHON} {harness.HERE}/upstream.py --port {app_port}"]
        sc = harness.Sidecar(f"""
workers: 1
app: {{ port: {app_port}, ready: {{ http_path: /hello, period: 100ms }}, stop_timeout: 5s }}
drain: {{ delay: 4s, timeout: 1s }}
clusters: [ {{ name: app, endpoints: [ "127.0.0.1:{app_port}" ] }} ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
registry:
  etcd: {{ endpoints: [ {self.etcd.client_urls[0]} ], ttl: {TTL}s }}
  service:
    name: users
    instance_id: ready-1
    address: 127.0.0.1
    port: 8000
    tags: [ v2 ]
    metadata: {{ zone: "${{TEST_ZONE:-z9}}" }}
""", app=app)
        try:
            key = self.key("users", "ready-1")
            checked_unready = 0
            while sc.admin_get("/ready")[0] != 200:
                self.assertNotIn(key, self.etcd.get_prefix("/services/"))
                checked_unready += 1
                time.sleep(0.1)
            self.assertGreater(checked_unready, 0, "the app was ready at once: nothing checked")
            kv = harness.wait_for(lambda: self.etcd.get_prefix("/services/").get(key), 5,
                                  what="the registration")
            doc = json.loads(kv)
            self.assertEqual(doc["address"], "127.0.0.1")
            self.assertEqual(doc["port"], 8000)
            self.assertEqual(doc["tags"], ["v2"])
            self.assertEqual(doc["metadata"], {"zone": "z9"})
            self.assertEqual(doc["health"], "passing")
            st = registry_status(sc)["registration"]
            self.assertTrue(st["registered"])
            self.assertEqual(st["etcd_endpoint"], self.etcd.client_urls[0])
            lease = int(st["lease_id"], 16)
            ttl = self.etcd.ctl("lease", "timetolive", f"{lease:x}")
            self.assertIn("remaining", ttl)

            # SIGTERM: the key goes at step 1, while the app still serves
            # (it gets its signal only after drain.delay).
            sc.signal(signal.SIGTERM)
            harness.wait_for(lambda: key not in self.etcd.get_prefix("/services/"), 3,
                             what="deregistration")
            with urllib.request.urlopen(f"http://127.0.0.1:{app_port}/hello", timeout=2) as r:
                self.assertEqual(r.status, 200)
            sc.wait(timeout=15)  # the app's own exit code
            self.assertIn("deregistered /services/users/ready-1", sc.output())
        finally:
            sc.stop()

    def test_sigkill_leaves_the_key_to_its_lease(self):
        sc = harness.Sidecar(server_config(self.etcd, "orders", "k1", 0, 1, "    port: 9000\n"))
        key = self.key("orders", "k1")
        try:
            harness.wait_for(lambda: key in self.etcd.get_prefix("/services/"), 5,
                             what="the registration")
            sc.proc.kill()
            sc.proc.wait(timeout=5)
            # Nobody revokes it: the lease expires after its TTL.
            harness.wait_for(lambda: key not in self.etcd.get_prefix("/services/"), TTL + 5,
                             interval=0.1, what="the lease to expire")
        finally:
            sc.stop()

    def test_a_deleted_key_is_put_back_and_a_lost_lease_replaced(self):
        sc = harness.Sidecar(server_config(self.etcd, "carts", "d1", 0, 1, "    port: 9001\n"))
        key = self.key("carts", "d1")
        try:
            harness.wait_for(lambda: key in self.etcd.get_prefix("/services/"), 5,
                             what="the registration")
            self.etcd.ctl("del", key)
            harness.wait_for(lambda: key in self.etcd.get_prefix("/services/"), TTL + 3,
                             what="the key to be put back")
            self.assertGreaterEqual(registry_status(sc)["registration"]["key_restores"], 1)
            # Someone revokes the lease: the sidecar notices at the next
            # keepalive and registers again with a new one.
            lease = int(registry_status(sc)["registration"]["lease_id"], 16)
            self.etcd.ctl("lease", "revoke", f"{lease:x}")
            harness.wait_for(
                lambda: registry_status(sc)["registration"]["reregistrations"] >= 1 and
                key in self.etcd.get_prefix("/services/"), TTL + 3, what="a new lease")
            self.assertNotEqual(int(registry_status(sc)["registration"]["lease_id"], 16), lease)
            status, metrics = sc.admin_get("/metrics")
            self.assertIn("sidecar_registry_registered 1", metrics)
            self.assertIn("sidecar_registry_reregistrations_total 1", metrics)
        finally:
            sc.stop()

    def test_a_deleted_key_is_put_back_at_once_by_the_watch(self):
        # ttl 60s: keepalives (and the key read after each) every 20s; the
        # watch on the own key puts it back long before that.
        config = server_config(self.etcd, "wish", "w1", 0, 1, "    port: 9002\n")
        config = config.replace(f"ttl: {TTL}s", "ttl: 60s")
        sc = harness.Sidecar(config)
        key = self.key("wish", "w1")
        try:
            harness.wait_for(lambda: key in self.etcd.get_prefix("/services/"), 5,
                             what="the registration")
            time.sleep(0.5)  # the watch is open
            for i in range(2):
                self.etcd.ctl("del", key)
                harness.wait_for(lambda: key in self.etcd.get_prefix("/services/"), 5,
                                 interval=0.05, what="the key to be put back by the watch")
                harness.wait_for(
                    lambda: registry_status(sc)["registration"]["key_restores"] >= i + 1, 5,
                    what="the restore counted")
            # Overwritten by someone else (another lease, or none): put back too.
            self.etcd.ctl("put", key, "{}")
            harness.wait_for(lambda: self.etcd.get_prefix("/services/").get(key) != "{}", 5,
                             interval=0.05, what="our value back")
        finally:
            sc.stop()


class OutageTest(unittest.TestCase):
    def test_etcd_down_for_three_ttls_then_back(self):
        etcd = Etcd()
        sc = harness.Sidecar(server_config(etcd, "pay", "o1", 0, 1, "    port: 9002\n"))
        key = "/services/pay/o1"
        try:
            harness.wait_for(lambda: key in etcd.get_prefix("/services/"), 5,
                             what="the registration")
            etcd.stop_member(0)
            time.sleep(3 * TTL)
            self.assertGreater(registry_status(sc)["registration"]["keepalive_failures"], 0)
            etcd.start_member(0)
            etcd.wait_healthy()
            # Back within one keepalive period (ttl/3) of etcd's return, plus
            # the backoff that is at most that long.
            harness.wait_for(lambda: key in (etcd.try_get_prefix("/services/") or {}), TTL + 3,
                             interval=0.1, what="the registration after the outage")
            harness.wait_for(lambda: registry_status(sc)["registration"]["state"] == "registered",
                             TTL + 3, what="the registrar to recover")
        finally:
            sc.stop()
            etcd.stop()


class DiscoveryTest(unittest.TestCase):
    def test_outbound_cluster_follows_the_registered_instances(self):
        etcd = Etcd()
        u1, u2 = harness.Upstream(), harness.Upstream()
        p1, p2 = harness.free_port(), harness.free_port()
        a1 = harness.Sidecar(server_config(etcd, "users", "a1", p1, u1.port,
                                           "    port: " + str(p1) + "\n    tags: [ v2 ]\n"))
        b = harness.Sidecar(f"""
workers: 2
clusters:
  - name: users
    discovery: {{ etcd: {{ service: users, tags: [ v2 ] }} }}
    connect_timeout: 1s
    outlier_detection: {{ consecutive_5xx: 2, interval: 1s, base_ejection_time: 30s,
                          max_ejection_percent: 50 }}
listeners:
  - name: outbound
    direction: outbound
    address: 127.0.0.1:0
    routes:
      - match: {{ prefix: / }}
        cluster: users
        retry_policy: {{ retry_on: [ connect-failure, reset ], num_retries: 2 }}
registry:
  etcd: {{ endpoints: [ {etcd.client_urls[0]} ], ttl: {TTL}s, timeout: 1s }}
""")
        a2 = None
        url = b.url("/hello", "outbound")

        def get():
            try:
                with urllib.request.urlopen(url, timeout=3) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code

        def endpoints():
            return registry_status(b)["discovery"][0]["endpoints"]

        try:
            harness.wait_for(lambda: endpoints() == [f"127.0.0.1:{p1}"], 5, what="A1 discovered")
            for _ in range(4):
                self.assertEqual(get(), 200)
            self.assertGreaterEqual(u1.stats()["requests"], 4)

            # A second instance joins and gets traffic.
            a2 = harness.Sidecar(server_config(etcd, "users", "a2", p2, u2.port,
                                               "    port: " + str(p2) + "\n    tags: [ v2 ]\n"))
            harness.wait_for(lambda: len(endpoints()) == 2, 5, what="A2 discovered")
            for _ in range(6):
                self.assertEqual(get(), 200)
            self.assertGreater(u2.stats()["requests"], 0)

            # An instance without the tag is not an endpoint.
            etcd.ctl("put", "/services/users/v1-only",
                     json.dumps({"address": "127.0.0.1", "port": 1, "tags": ["v1"]}))
            harness.wait_for(lambda: registry_status(b)["discovery"][0]["updates"] >= 2, 5,
                             what="updates")
            self.assertEqual(len(endpoints()), 2)

            # SIGKILL of A2: no deregistration, so its key stays until the
            # lease expires. Meanwhile every request still succeeds: a
            # connect failure is retried on the other instance, and outlier
            # detection ejects A2 after two of them.
            a2.proc.kill()
            a2.proc.wait(timeout=5)
            statuses, ejected = [], False
            deadline = time.monotonic() + TTL + 5
            while endpoints() != [f"127.0.0.1:{p1}"]:
                self.assertLess(time.monotonic(), deadline, "A2's lease did not expire")
                statuses.append(get())
                if not ejected:
                    _, metrics = b.admin_get("/metrics")
                    ejected = harness.metric_value(
                        harness.parse_metrics(metrics),
                        "sidecar_cluster_outlier_detection_ejections_total", cluster="users") >= 1
                time.sleep(0.05)
            self.assertGreater(len(statuses), 10)
            self.assertEqual([s for s in statuses if s != 200], [])
            self.assertTrue(ejected, "A2 was not ejected before its lease expired")
            for _ in range(4):
                self.assertEqual(get(), 200)
            _, clusters = b.admin_get("/clusters")
            self.assertIn(f"127.0.0.1:{p1}", clusters)
            self.assertNotIn(f"127.0.0.1:{p2}", clusters)

            # etcd goes away: the last known endpoints stay, marked stale.
            etcd.stop_member(0)
            harness.wait_for(lambda: registry_status(b)["discovery"][0]["stale_seconds"] > 0, 5,
                             what="staleness")
            self.assertEqual(endpoints(), [f"127.0.0.1:{p1}"])
            self.assertEqual(get(), 200)
            _, metrics = b.admin_get("/metrics")
            self.assertIn('sidecar_registry_discovered_endpoints{cluster="users"} 1', metrics)
            a1.proc.kill()  # no deregistration: etcd is down anyway
            a1.proc.wait(timeout=5)

            # Back, with A1's key expired meanwhile (no instance left): the
            # cluster refuses at once (503) rather than calling a stale peer.
            etcd.start_member(0)
            etcd.wait_healthy()
            harness.wait_for(lambda: endpoints() == [], TTL + 8, what="A1's key to expire")
            self.assertEqual(get(), 503)
        finally:
            for sc in (b, a1, a2):
                if sc is not None:
                    sc.stop()
            u1.stop()
            u2.stop()
            etcd.stop()


if __name__ == "__main__":
    if not os.path.exists(ETCD):
        print("etcd not installed (scripts/install-deps.sh: etcd-server etcd-client)")
        sys.exit(77)
    harness.run_tests()
