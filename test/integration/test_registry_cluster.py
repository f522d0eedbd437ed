#!/usr/bin/python3
"""The registry module against a 3-member etcd cluster (failover when the
leader is killed: registration without a gap longer than the TTL, the
discovery watch moves to another member), and against a single member with
TLS client certificates and username/password auth whose tokens expire."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import certs
import harness
from etcdpeer import ETCD, Etcd


def registry_status(sc):
    status, body = sc.admin_get("/registry")
    assert status == 200, body
    return json.loads(body)


class ClusterFailoverTest(unittest.TestCase):
    def test_leader_killed(self):
        ttl = 3
        etcd = Etcd(members=3)
        leader = etcd.leader()
        self.assertIsNotNone(leader)
        # The leader first: both sidecars talk to it until it dies.
        urls = [etcd.client_urls[leader]] + \
            [u for i, u in enumerate(etcd.client_urls) if i != leader]
        registry = f"""
registry:
  etcd: {{ endpoints: [ {", ".join(urls)} ], ttl: {ttl}s, timeout: 1s }}
"""
        a = harness.Sidecar(f"""
workers: 1
clusters: [ {{ name: app, endpoints: [ "127.0.0.1:1" ] }} ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
{registry}
  service: {{ name: users, instance_id: a, address: 127.0.0.1, port: 8000 }}
""")
        b = harness.Sidecar(f"""
workers: 1
clusters: [ {{ name: users, discovery: {{ etcd: {{ service: users }} }} }} ]
listeners:
  - name: outbound
    direction: outbound
    address: 127.0.0.1:0
    routes: [ {{ match: {{ prefix: / }}, cluster: users }} ]
{registry}""")
        key = "/services/users/a"
        try:
            harness.wait_for(lambda: key in etcd.get_prefix("/services/"), 5,
                             what="the registration")
            harness.wait_for(
                lambda: registry_status(b)["discovery"][0]["endpoints"] == ["127.0.0.1:8000"], 5,
                what="discovery")
            self.assertEqual(registry_status(a)["registration"]["etcd_endpoint"], urls[0])

            etcd.stop_member(leader, signal.SIGKILL)
            # Watch the key from the survivors for 3 x TTL: every gap in its
            # presence must be shorter than the TTL. Only reads that worked
            # count (during the election a read may time out).
            absent_since = None
            longest_gap = 0.0
            end = time.monotonic() + 3 * ttl
            while time.monotonic() < end:
                kvs = etcd.try_get_prefix("/services/")
                now = time.monotonic()
                if kvs is not None and key in kvs:
                    absent_since = None
                elif kvs is not None and absent_since is None:
                    absent_since = now
                if absent_since is not None:
                    longest_gap = max(longest_gap, now - absent_since)
                time.sleep(0.2)
            self.assertLess(longest_gap, ttl)
            self.assertIn(key, etcd.get_prefix("/services/"))
            st = registry_status(a)["registration"]
            self.assertTrue(st["registered"])
            self.assertNotEqual(st["etcd_endpoint"], urls[0])

            # The discovery watch moved on too: a new instance shows up.
            etcd.ctl("put", "/services/users/manual",
                     json.dumps({"address": "127.0.0.1", "port": 8001}))
            harness.wait_for(
                lambda: registry_status(b)["discovery"][0]["endpoints"] ==
                ["127.0.0.1:8000", "127.0.0.1:8001"], 10, what="discovery after failover")
        finally:
            a.stop()
            b.stop()
            etcd.stop()


def issue(ca, directory, name, subject, usage, san):
    """A leaf signed by `ca` with the given subject, extendedKeyUsage and SAN."""
    cert, key = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
    csr, ext = os.path.join(directory, f"{name}.csr"), os.path.join(directory, f"{name}.ext")
    with open(ext, "w") as f:
        f.write(f"extendedKeyUsage={usage}\nsubjectAltName={san}\n")
    for args in (["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key, "-out", csr, "-subj", subject],
                 ["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key,
                  "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-out", cert,
                  "-extfile", ext, "-days", "2"]):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)
    return cert, key


class TlsAuthTest(unittest.TestCase):
    def test_client_certificates_and_expiring_tokens(self):
        d = tempfile.TemporaryDirectory(prefix="sidecar-etcd-certs-")
        ca = certs.CA(d.name)
        # etcd's gateway calls etcd's gRPC server with the server certificate
        # as its client certificate: it needs both usages.
        cert, key = issue(ca, d.name, "etcd", "/CN=etcd", "serverAuth,clientAuth",
                          "IP:127.0.0.1,DNS:localhost")
        # etcd 3.4's gateway refuses a client certificate with a CommonName
        # when client-cert-auth is on ("CommonName of client sending a request
        # against gateway will be ignored and not used as expected").
        ccert, ckey = issue(ca, d.name, "sidecar", "/O=sidecar", "clientAuth", "DNS:sidecar.test")
        root_cert, root_key = ca.issue("root", client=True)
        # Simple tokens unused for a second expire: keepalives every 2s
        # (ttl 6s) need a new token each time.
        etcd = Etcd(tls={"ca": ca.cert, "cert": cert, "key": key,
                         "client_cert": root_cert, "client_key": root_key},
                    extra=["--auth-token", "simple", "--auth-token-ttl", "1"])
        sc = None
        try:
            etcd.ctl("user", "add", "root:rootpw")
            etcd.ctl("user", "grant-role", "root", "root")
            etcd.ctl("role", "add", "svc")
            etcd.ctl("role", "grant-permission", "svc", "--prefix=true", "readwrite", "/services/")
            etcd.ctl("user", "add", "svc:svcpw")
            etcd.ctl("user", "grant-role", "svc", "svc")
            etcd.ctl("auth", "enable")
            sc = harness.Sidecar(f"""
workers: 1
clusters: [ {{ name: app, endpoints: [ "127.0.0.1:1" ] }} ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
registry:
  etcd:
    endpoints: [ {etcd.client_urls[0]} ]
    ttl: 6s
    username: svc
    password: svcpw
    tls: {{ ca: {ca.cert}, cert: {ccert}, key: {ckey} }}
  service: {{ name: secure, instance_id: s1, address: 127.0.0.1, port: 8443 }}
""")
            key = "/services/secure/s1"
            try:
                harness.wait_for(
                    lambda: key in etcd.get_prefix("/services/", user="root:rootpw"), 5,
                    what="the registration over TLS with auth")
            except TimeoutError:
                raise AssertionError(sc.admin_get("/registry")[1] + sc.output())
            harness.wait_for(
                lambda: registry_status(sc)["registration"]["authentications"] >= 3, 10,
                what="tokens to be refreshed")
            st = registry_status(sc)["registration"]
            self.assertTrue(st["registered"])
            self.assertEqual(st["reregistrations"], 0)
            # The password is not shown.
            _, config = sc.admin_get("/config")
            self.assertNotIn("svcpw", config)
            sc.signal(signal.SIGTERM)
            harness.wait_for(lambda: key not in etcd.get_prefix("/services/", user="root:rootpw"),
                             5, what="deregistration")
        finally:
            if sc is not None:
                sc.stop()
            etcd.stop()
            d.cleanup()


if __name__ == "__main__":
    if not os.path.exists(ETCD):
        print("etcd not installed (scripts/install-deps.sh: etcd-server etcd-client)")
        sys.exit(77)
    harness.run_tests()
