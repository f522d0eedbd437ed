#!/usr/bin/python3
"""TLS through the real binary: termination (versions, ALPN, SNI, mTLS, XFCC),
origination to a real nginx (verification failures are 503s with the reason),
certificates rotated under load, and bad certificate files."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import certs
from harness import (BIN, Sidecar, Upstream, _PROCESSES, curl, free_port, run_tests, wait_for)

SANITIZED = bool(os.environ.get("SIDECAR_SANITIZE"))


def s_client(port, *args, data=b"", timeout=10):
    """openssl s_client; returns (exit code, stdout+stderr text)."""
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       input=data, capture_output=True, timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def served_serial(port, servername=None):
    args = ["-servername", servername] if servername else []
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       input=b"", capture_output=True, timeout=10)
    x = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=p.stdout,
                       capture_output=True, timeout=10)
    out = x.stdout.decode().strip()
    return out.split("=", 1)[1] if "=" in out else ""


def metric(sc, family, **labels):
    text = sc.admin_get("/metrics")[1]
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(family + "{") and not line.startswith(family + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


class TerminationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sidecar-tls-")
        d = cls.tmp.name
        cls.ca = certs.CA(d, "ca")
        cls.other = certs.CA(d, "other", key="rsa")
        cls.a = cls.ca.issue("a", dns=["a.example", "localhost"])
        cls.wild = cls.ca.issue("wild", dns=["*.wild.example"], key="rsa")
        cls.client = cls.ca.issue("client", uris=["spiffe://cluster.local/ns/a/sa/b"], client=True)
        cls.client_wrong_san = cls.ca.issue("client2", uris=["spiffe://cluster.local/ns/a/sa/x"],
                                            client=True)
        cls.client_other_ca = cls.other.issue("client3", uris=["spiffe://cluster.local/ns/a/sa/b"],
                                              client=True)
        cls.log = os.path.join(d, "access.log")
        cls.up = Upstream()
        a_crt, a_key = cls.a
        w_crt, w_key = cls.wild
        cls.sc = Sidecar(f"""
workers: 2
access_log:
  path: {cls.log}
  json_format:
    tls: "%DOWNSTREAM_TLS_VERSION%"
    sni: "%REQUESTED_SERVER_NAME%"
    peer: "%DOWNSTREAM_PEER_SUBJECT%"
    uri: "%DOWNSTREAM_PEER_URI_SAN%"
    scheme: "%REQ(:SCHEME)%"
    path: "%REQ(:PATH)%"
clusters:
  - name: app
    endpoints: [ "{cls.up.address}" ]
listeners:
  - name: public
    address: 127.0.0.1:0
    request_headers_timeout: 1s
    tls:
      certificates:
        - {{ cert: {a_crt}, key: {a_key} }}
        - {{ cert: {w_crt}, key: {w_key} }}
      alpn: [ http/1.1 ]
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
  - name: strict
    address: 127.0.0.1:0
    tls:
      certificates: [ {{ cert: {a_crt}, key: {a_key} }} ]
      min_version: "1.3"
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
  - name: mtls
    address: 127.0.0.1:0
    tls:
      certificates: [ {{ cert: {a_crt}, key: {a_key} }} ]
      client_ca: {cls.ca.cert}
      require_client_cert: true
      verify_client_san: [ "spiffe://cluster.local/ns/a/sa/b" ]
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
  - name: optional
    address: 127.0.0.1:0
    tls:
      certificates: [ {{ cert: {a_crt}, key: {a_key} }} ]
      client_ca: {cls.ca.cert}
      require_client_cert: false
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
""")

    @classmethod
    def tearDownClass(cls):
        cls.sc.stop()
        cls.up.stop()
        cls.tmp.cleanup()

    def https(self, listener, path, *args, name="a.example"):
        port = self.sc.port(listener)
        return curl("--cacert", self.ca.cert, "--resolve", f"{name}:{port}:127.0.0.1", *args,
                    f"https://{name}:{port}{path}")

    def test_tls12_and_tls13_accepted_older_refused(self):
        port = self.sc.port("public")
        for version, proto in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            rc, out = s_client(port, version, "-servername", "a.example")
            self.assertEqual(rc, 0, out)
            self.assertIn(f"New, {proto}, Cipher is", out)
        for old in ("-tls1", "-tls1_1"):
            rc, out = s_client(port, old, "-cipher", "DEFAULT@SECLEVEL=0")
            self.assertNotEqual(rc, 0, out)
            self.assertIn("Cipher is (NONE)", out)

    def test_min_version_13_refuses_12(self):
        port = self.sc.port("strict")
        rc, out = s_client(port, "-tls1_2")
        self.assertNotEqual(rc, 0, out)
        rc, out = s_client(port, "-tls1_3")
        self.assertEqual(rc, 0, out)

    def test_alpn(self):
        rc, out = s_client(self.sc.port("public"), "-alpn", "h2,http/1.1")
        self.assertEqual(rc, 0, out)
        self.assertIn("ALPN protocol: http/1.1", out)

    def test_sni_picks_the_certificate(self):
        port = self.sc.port("public")
        a_serial = certs.serial_of(self.a[0])
        wild_serial = certs.serial_of(self.wild[0])
        self.assertEqual(served_serial(port, "a.example"), a_serial)
        self.assertEqual(served_serial(port, "api.wild.example"), wild_serial)
        # An unknown name (and none at all) gets the default, the first.
        self.assertEqual(served_serial(port, "unknown.example"), a_serial)
        self.assertEqual(served_serial(port), a_serial)
        rc, out, err = self.https("public", "/hello", name="api.wild.example")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"hello\n")

    def test_termination_to_the_plain_app_says_https(self):
        rc, out, err = self.https("public", "/headers", "-H", "X-Forwarded-Proto: http")
        self.assertEqual(rc, 0, err)
        headers = {k.lower(): v for k, v in json.loads(out)["headers"]}
        self.assertEqual(headers["x-forwarded-proto"], "https")
        self.assertNotIn("x-forwarded-client-cert", headers)
        self.assertGreater(metric(self.sc, "sidecar_tls_handshakes_total", listener="public"), 0)

    def test_mtls(self):
        crt, key = self.client
        rc, out, err = self.https("mtls", "/headers", "--cert", crt, "--key", key,
                                  "-H", "X-Forwarded-Client-Cert: By=forged")
        self.assertEqual(rc, 0, err)
        headers = {k.lower(): v for k, v in json.loads(out)["headers"]}
        xfcc = headers["x-forwarded-client-cert"]
        self.assertNotIn("forged", xfcc)
        self.assertRegex(xfcc, r"^Hash=[0-9a-f]{64};Subject=\"CN=client\";"
                               r"URI=spiffe://cluster.local/ns/a/sa/b$")
        # No certificate, a certificate from another CA, a SAN not allowed.
        before_missing = metric(self.sc, "sidecar_tls_handshake_errors_total", listener="mtls",
                                reason="no_client_certificate")
        before_bad = metric(self.sc, "sidecar_tls_handshake_errors_total", listener="mtls",
                            reason="bad_certificate")
        rc, _, err = self.https("mtls", "/hello")
        self.assertNotEqual(rc, 0)
        for crt, key in (self.client_other_ca, self.client_wrong_san):
            rc, _, err = self.https("mtls", "/hello", "--cert", crt, "--key", key)
            self.assertNotEqual(rc, 0, "accepted a client certificate that must be refused")
        wait_for(lambda: metric(self.sc, "sidecar_tls_handshake_errors_total", listener="mtls",
                                reason="no_client_certificate") > before_missing, 5,
                 what="the missing certificate counted")
        wait_for(lambda: metric(self.sc, "sidecar_tls_handshake_errors_total", listener="mtls",
                                reason="bad_certificate") >= before_bad + 2, 5,
                 what="the bad certificates counted")

    def test_optional_client_certificate(self):
        rc, out, err = self.https("optional", "/headers", "-H", "X-Forwarded-Client-Cert: forged")
        self.assertEqual(rc, 0, err)
        headers = {k.lower(): v for k, v in json.loads(out)["headers"]}
        self.assertNotIn("x-forwarded-client-cert", headers)  # sanitize_set, no certificate
        crt, key = self.client_wrong_san  # any SAN: no allow-list here
        rc, out, err = self.https("optional", "/headers", "--cert", crt, "--key", key)
        self.assertEqual(rc, 0, err)
        headers = {k.lower(): v for k, v in json.loads(out)["headers"]}
        self.assertIn("URI=spiffe://cluster.local/ns/a/sa/x", headers["x-forwarded-client-cert"])

    def test_access_log_has_the_tls_facts(self):
        crt, key = self.client
        rc, _, err = self.https("mtls", "/logged-tls", "--cert", crt, "--key", key, "--tlsv1.3")
        self.assertEqual(rc, 0, err)

        def line():
            if not os.path.exists(self.log):
                return None
            for l in open(self.log):
                if "/logged-tls" in l:
                    return json.loads(l)
            return None
        entry = wait_for(line, 5, what="the access log line")
        self.assertEqual(entry["tls"], "TLSv1.3")
        self.assertEqual(entry["sni"], "a.example")
        self.assertEqual(entry["peer"], "CN=client")
        self.assertEqual(entry["uri"], "spiffe://cluster.local/ns/a/sa/b")
        self.assertEqual(entry["scheme"], "https")

    def test_silent_clients_are_closed_and_do_not_block_others(self):
        port = self.sc.port("public")
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        try:
            # Others are served while 200 handshakes wait.
            rc, out, err = self.https("public", "/hello")
            self.assertEqual(rc, 0, err)
            # The request headers timeout (1s) covers the handshake.
            t0 = time.monotonic()
            for s in silent:
                s.settimeout(10)
                self.assertEqual(s.recv(1), b"")
            self.assertLess(time.monotonic() - t0, 9)
        finally:
            for s in silent:
                s.close()
        wait_for(lambda: metric(self.sc, "sidecar_tls_handshake_errors_total", listener="public",
                                reason="timeout") >= 200, 10, what="handshake timeouts counted")

    def test_certs_endpoint(self):
        status, body = self.sc.admin_get("/certs")
        self.assertEqual(status, 200)
        items = json.loads(body)["certificates"]
        public = [c for c in items if c.get("listener") == "public"]
        self.assertEqual([c["serial"] for c in public],
                         [certs.serial_of(self.a[0]), certs.serial_of(self.wild[0])])
        self.assertEqual(public[0]["dns_sans"], ["a.example", "localhost"])
        self.assertEqual(public[1]["key_type"], "RSA 2048")
        self.assertEqual(public[0]["key_type"], "EC P-256")
        self.assertTrue(public[0]["default"])
        self.assertRegex(public[0]["not_after"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertGreater(metric(self.sc, "sidecar_tls_certificate_expiry_timestamp_seconds",
                                  name="public", serial=public[0]["serial"]), time.time())


NGINX_CONF = """daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
{servers}
}}
"""

NGINX_SERVER = """  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    {extra}
    location / {{ return 200 "tls:{name} $ssl_client_s_dn\\n"; }}
  }}
"""


class OriginationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sidecar-tls-out-")
        d = cls.tmp.name
        os.chmod(d, 0o755)
        cls.ca = certs.CA(d, "ca")
        cls.unknown = certs.CA(d, "unknown")
        good = cls.ca.issue("good", dns=["localhost"])
        wrong = cls.ca.issue("wrong", dns=["other.example"])
        expired = certs.expired_pair(d, cls.ca)
        unknown = cls.unknown.issue("unknownleaf", dns=["localhost"])
        cls.client = cls.ca.issue("client", dns=["client.example"], client=True)
        cls.ports = {n: free_port() for n in ("good", "wrong", "expired", "unknown", "mtls")}
        servers = [
            NGINX_SERVER.format(port=cls.ports["good"], cert=good[0], key=good[1], extra="",
                                name="good"),
            NGINX_SERVER.format(port=cls.ports["wrong"], cert=wrong[0], key=wrong[1], extra="",
                                name="wrong"),
            NGINX_SERVER.format(port=cls.ports["expired"], cert=expired[0], key=expired[1],
                                extra="", name="expired"),
            NGINX_SERVER.format(port=cls.ports["unknown"], cert=unknown[0], key=unknown[1],
                                extra="", name="unknown"),
            NGINX_SERVER.format(port=cls.ports["mtls"], cert=good[0], key=good[1],
                                extra=f"ssl_client_certificate {cls.ca.cert}; ssl_verify_client on;",
                                name="mtls"),
        ]
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=d, servers="".join(servers)))
        cls.nginx = subprocess.Popen(["nginx", "-p", d, "-c", conf], stderr=subprocess.PIPE)
        _PROCESSES.append(cls.nginx)
        for p in cls.ports.values():
            wait_for(lambda p=p: _listening(p), 10, what="nginx")
        ccrt, ckey = cls.client
        clusters = ""
        routes = ""
        for name, extra in (("good", ""), ("wrong", ""), ("expired", ""), ("unknown", ""),
                            ("mtls", f", cert: {ccrt}, key: {ckey}"), ("mtls-nocert", "")):
            port = cls.ports["mtls" if name.startswith("mtls") else name]
            clusters += (f"  - name: {name}\n    endpoints: [ localhost:{port} ]\n"
                         f"    tls: {{ ca: {cls.ca.cert}{extra} }}\n")
            routes += f"      - {{ match: {{ host: {name} }}, cluster: {name} }}\n"
        cls.log = os.path.join(d, "access.log")
        cls.sc = Sidecar(f"""
workers: 1
access_log: {{ path: {cls.log}, format: text, text_format: "%REQ(:AUTHORITY)% %RESPONSE_CODE% %RESPONSE_FLAGS%" }}
clusters:
{clusters}
listeners:
  - name: outbound
    direction: outbound
    address: 127.0.0.1:0
    routes:
{routes}
""")

    @classmethod
    def tearDownClass(cls):
        cls.sc.stop()
        cls.nginx.terminate()
        cls.nginx.wait(timeout=10)
        cls.tmp.cleanup()

    def get(self, host):
        return curl("-H", f"Host: {host}", self.sc.url("/", "outbound"), "-w", "\n%{http_code}")

    def test_verified_origination_and_session_reuse(self):
        for _ in range(3):
            rc, out, err = self.get("good")
            self.assertEqual(rc, 0, err)
            self.assertTrue(out.startswith(b"tls:good"), out)
            self.assertTrue(out.endswith(b"\n200"), out)

    def test_verification_failures_are_503_with_the_reason(self):
        for host, reason in (("wrong", "hostname mismatch"),
                             ("expired", "certificate has expired"),
                             ("unknown", "unable to get local issuer certificate")):
            rc, out, err = self.get(host)
            self.assertEqual(rc, 0, err)
            self.assertTrue(out.endswith(b"\n503"), out)
            self.assertIn(b"certificate verify failed: " + reason.encode(), out)
        wait_for(lambda: os.path.exists(self.log) and
                 "wrong 503 UF" in open(self.log).read(), 5, what="UF in the access log")
        self.assertIn("hostname mismatch", self.sc.output())

    def test_mtls_to_nginx(self):
        rc, out, err = self.get("mtls")
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith(b"tls:mtls CN=client.example"), out)
        rc, out, err = self.get("mtls-nocert")
        self.assertTrue(out.endswith(b"\n400"), out)  # nginx: no required SSL certificate


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class RotationTest(unittest.TestCase):
    """Certificates replaced under load, by rewriting files and by the
    Kubernetes secret volume's `..data` symlink swap."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sidecar-tls-rot-")
        d = self.tmp.name
        self.ca = certs.CA(d, "ca")
        # A secret volume: tls.crt -> ..data/tls.crt, ..data -> ..v0
        self.vol = os.path.join(d, "secret")
        os.makedirs(self.vol)
        self.version = 0
        self._publish_secret()
        for f in ("tls.crt", "tls.key"):
            os.symlink(os.path.join("..data", f), os.path.join(self.vol, f))
        # Plain files rewritten in place (key first, then certificate).
        self.plain = os.path.join(d, "plain")
        os.makedirs(self.plain)
        crt, key = self.ca.issue("p0", dns=["localhost"], out_dir=os.path.join(d, "issued"))
        shutil.copy(crt, os.path.join(self.plain, "tls.crt"))
        shutil.copy(key, os.path.join(self.plain, "tls.key"))
        self.up = Upstream()
        self.sc = Sidecar(f"""
workers: 2
clusters: [ {{ name: app, endpoints: [ "{self.up.address}" ] }} ]
listeners:
  - name: secret
    address: 127.0.0.1:0
    tls: {{ certificates: [ {{ cert: {self.vol}/tls.crt, key: {self.vol}/tls.key }} ] }}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
  - name: plain
    address: 127.0.0.1:0
    tls: {{ certificates: [ {{ cert: {self.plain}/tls.crt, key: {self.plain}/tls.key }} ] }}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
""")

    def tearDown(self):
        self.sc.stop()
        self.up.stop()
        self.tmp.cleanup()

    def _publish_secret(self):
        """Writes a new ..vN directory and swaps ..data to it atomically."""
        d = os.path.join(self.vol, f"..v{self.version}")
        crt, key = self.ca.issue(f"s{self.version}", dns=["localhost"], out_dir=d)
        os.rename(crt, os.path.join(d, "tls.crt"))
        os.rename(key, os.path.join(d, "tls.key"))
        tmp = os.path.join(self.vol, "..data_tmp")
        os.symlink(f"..v{self.version}", tmp)
        os.rename(tmp, os.path.join(self.vol, "..data"))
        self.version += 1
        return os.path.join(d, "tls.crt")

    def _rewrite_plain(self, n):
        crt, key = self.ca.issue(f"p{n}", dns=["localhost"],
                                 out_dir=os.path.join(self.tmp.name, "issued"))
        for src, dst in ((key, "tls.key"), (crt, "tls.crt")):
            with open(src, "rb") as f:
                data = f.read()
            with open(os.path.join(self.plain, dst), "wb") as f:  # in place
                f.write(data)
        return crt

    def _wrk(self, listener, seconds, results, close):
        args = ["wrk", "-t1", "-c4", f"-d{seconds}s"]
        if close:
            args += ["-H", "Connection: close"]
        p = subprocess.run([*args, f"https://127.0.0.1:{self.sc.port(listener)}/hello"],
                           capture_output=True, text=True, timeout=seconds + 30)
        results.append(p.stdout + p.stderr)

    def test_rotation_under_load_loses_nothing(self):
        results = []
        seconds = 12
        loads = [threading.Thread(target=self._wrk, args=(l, seconds, results, close))
                 for l in ("secret", "plain") for close in (False, True)]
        for t in loads:
            t.start()
        bound = 3.0 if SANITIZED else 1.5
        time.sleep(1)
        for i in range(1, 6):
            if i % 2:
                crt, listener = self._publish_secret(), "secret"
            else:
                crt, listener = self._rewrite_plain(i), "plain"
            want = certs.serial_of(crt)
            t0 = time.monotonic()
            wait_for(lambda: served_serial(self.sc.port(listener)) == want, 10, 0.05,
                     f"rotation {i} served")
            took = time.monotonic() - t0
            print(f"rotation {i} ({listener}): new serial served after {took:.2f}s")
            self.assertLess(took, bound)
            time.sleep(1)
        for t in loads:
            t.join()
        self.assertEqual(len(results), 4)
        for out in results:
            self.assertNotIn("Socket errors", out, out)
            self.assertNotIn("Non-2xx", out, out)
            reqs = int(re.search(r"(\d+) requests in", out).group(1))
            self.assertGreater(reqs, 0, out)
        self.assertEqual(self.sc.admin_get("/metrics")[1].count(
            'sidecar_tls_certificate_reload_failures_total{scope="listener",name="plain"} 0'), 1)

    def test_a_broken_file_is_rejected_and_the_old_certificate_stays(self):
        before = served_serial(self.sc.port("plain"))
        with open(os.path.join(self.plain, "tls.crt"), "w") as f:
            f.write("not a certificate\n")
        wait_for(lambda: metric(self.sc, "sidecar_tls_certificate_reload_failures_total",
                                name="plain") >= 1, 5, what="the failure counted")
        self.assertEqual(served_serial(self.sc.port("plain")), before)
        self.assertIn("still serving the previous ones", self.sc.output())
        # A good pair again is taken.
        crt = self._rewrite_plain(99)
        wait_for(lambda: served_serial(self.sc.port("plain")) == certs.serial_of(crt), 5,
                 what="the repaired pair served")


class ConfigErrorsTest(unittest.TestCase):
    def test_bad_files_are_config_errors_with_positions(self):
        with tempfile.TemporaryDirectory() as d:
            ca = certs.CA(d)
            a_crt, a_key = ca.issue("a", dns=["a.example"])
            b_crt, b_key = ca.issue("b", dns=["b.example"])
            e_crt, e_key = certs.expired_pair(d, ca)
            junk = os.path.join(d, "junk.pem")
            with open(junk, "w") as f:
                f.write("hello\n")
            conf = os.path.join(d, "s.yaml")
            with open(conf, "w") as f:
                f.write(f"""clusters: [ {{ name: app, endpoints: [ "127.0.0.1:1" ] }} ]
listeners:
  - name: l
    address: 127.0.0.1:0
    tls:
      certificates:
        - {{ cert: {a_crt}, key: {b_key} }}
        - {{ cert: {e_crt}, key: {e_key} }}
        - {{ cert: {junk}, key: {a_key} }}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
""")
            p = subprocess.run([BIN, "validate", "-c", conf], capture_output=True, text=True)
            self.assertEqual(p.returncode, 64, p.stderr)
            self.assertIn(f"{conf}:7:11: listeners[0].tls.certificates[0]: ", p.stderr)
            self.assertIn("the private key does not match the certificate", p.stderr)
            self.assertIn(f"{conf}:8:11: listeners[0].tls.certificates[1]: ", p.stderr)
            self.assertIn("the certificate expired on 2020-01-02T00:00:00Z", p.stderr)
            self.assertIn(f"{conf}:9:11: listeners[0].tls.certificates[2]: ", p.stderr)
            self.assertIn("no PEM certificate found", p.stderr)
            p = subprocess.run([BIN, "run", "-c", conf], capture_output=True, text=True,
                               timeout=20)
            self.assertEqual(p.returncode, 64, p.stderr)


if __name__ == "__main__":
    run_tests()
