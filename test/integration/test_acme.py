#!/usr/bin/python3
"""ACME end to end against pebble (Debian's, a real ACME server) on 127.0.0.1:
issuance with HTTP-01 answered by the sidecar, serving, restart with the
stored account and certificate, renewal of short-lived certificates without
dropping connections, retries with backoff, and Retry-After (pebble has no
rate limits: a small HTTPS receiver answers 429 with Retry-After instead)."""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import BIN, Sidecar, Upstream, _PROCESSES, curl, free_port, run_tests, wait_for

DOMAINS = ["app.example.test", "www.example.test"]


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_server_cert(dir):
    """A test CA and a certificate for 127.0.0.1 (pebble's and the receiver's HTTPS)."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=acme test CA",
            cwd=dir)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=dir)
    with open(os.path.join(dir, "ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext", cwd=dir)


def free_udp_tcp_port():
    """A port free for both UDP and TCP (the DNS server takes both)."""
    for _ in range(50):
        port = free_port()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
    raise RuntimeError("no free port")


class Pebble:
    """pebble with its own DNS (pebble-challtestsrv answering 127.0.0.1 for
    every name), validating HTTP-01 on `http_port`."""

    def __init__(self, dir, http_port, validity=3600, nonce_reject=0, port=None):
        self.dir = dir
        self.port = port or free_port()
        self.mgmt = free_port()
        self.dns_port = free_udp_tcp_port()
        self.log_path = os.path.join(dir, f"pebble-{self.port}.log")
        cfg = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.mgmt}",
            "certificate": os.path.join(dir, "server.pem"),
            "privateKey": os.path.join(dir, "server.key"),
            "httpPort": http_port, "tlsPort": free_port(),
            "ocspResponderURL": "", "externalAccountBindingRequired": False,
            "certificateValidityPeriod": validity}}
        cfg_path = os.path.join(dir, f"pebble-{self.port}.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        self.dns_log = open(os.path.join(dir, f"dns-{self.port}.log"), "wb")
        self.dns = subprocess.Popen(
            ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "",
             "-https01", "", "-tlsalpn01", "", "-management", f"127.0.0.1:{free_port()}",
             "-defaultIPv6", ""], stdout=self.dns_log, stderr=subprocess.STDOUT)
        _PROCESSES.append(self.dns)
        self.log = open(self.log_path, "wb")
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1",
               "PEBBLE_WFE_NONCEREJECT": str(nonce_reject)}
        self.proc = subprocess.Popen(
            ["pebble", "-config", cfg_path, "-dnsserver", f"127.0.0.1:{self.dns_port}"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        _PROCESSES.append(self.proc)
        self.ctx = ssl.create_default_context(cafile=os.path.join(dir, "ca.pem"))
        wait_for(self._up, 20, 0.05, "pebble's directory")
        self.root_path = os.path.join(dir, f"pebble-root-{self.port}.pem")
        with open(self.root_path, "wb") as f:
            f.write(self.mgmt_get("/roots/0"))

    @property
    def directory(self):
        return f"https://127.0.0.1:{self.port}/dir"

    def _up(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"pebble exited:\n{self.output()}")
        try:
            c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=2)
            c.request("GET", "/dir")
            ok = c.getresponse().status == 200
            c.close()
            return ok
        except OSError:
            return False

    def mgmt_get(self, path):
        c = http.client.HTTPSConnection("127.0.0.1", self.mgmt, context=self.ctx, timeout=5)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status != 200:
            raise RuntimeError(f"pebble {path}: {r.status} {body!r}")
        return body

    def output(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def new_accounts(self):
        """POSTs to newAccount pebble has seen."""
        return self.output().count("POST /sign-me-up")

    def stop(self):
        for p in (self.proc, self.dns):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.log.close()
        self.dns_log.close()


def acme_config(upstream, http_port, directory, storage, ca, extra=""):
    return f"""
workers: 2
clusters:
  - name: app
    endpoints: [ "{upstream.address}" ]
listeners:
  - name: http
    address: 127.0.0.1:{http_port}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
  - name: public
    address: 127.0.0.1:0
    tls: {{}}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
acme:
  directory: {directory}
  email: ops@example.com
  domains: [ {", ".join(DOMAINS)} ]
  storage: {storage}
  listener: public
  challenge_listener: http
  ca: {ca}
{extra}"""


class AcmeTestBase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sidecar-acme-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        make_server_cert(self.dir)
        self.ca = os.path.join(self.dir, "ca.pem")
        self.storage = os.path.join(self.dir, "storage")
        self.http_port = free_port()
        self.upstream = Upstream()
        self.addCleanup(self.upstream.stop)

    def pebble(self, **kwargs):
        p = Pebble(self.dir, self.http_port, **kwargs)
        self.addCleanup(p.stop)
        return p

    def sidecar(self, directory, extra="", args=()):
        sc = Sidecar(acme_config(self.upstream, self.http_port, directory, self.storage, self.ca,
                                 extra), args=args)
        self.addCleanup(sc.stop)
        return sc

    def status(self, sc):
        return json.loads(sc.admin_get("/acme")[1])

    def wait_serial(self, sc, other_than=None, timeout=60):
        def serial():
            s = self.status(sc)
            c = s["certificate"]
            if c and c["serial"] != other_than and s["state"] == "valid":
                return c["serial"]
            return None
        try:
            return wait_for(serial, timeout, 0.1, "an ACME certificate")
        except TimeoutError:
            self.fail(f"no certificate: {self.status(sc)}\n{sc.output()}")

    def metric(self, sc, name, **labels):
        for line in sc.admin_get("/metrics")[1].splitlines():
            if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
                rest = line[len(name):]
                if rest.startswith(" ") or rest.startswith("{"):
                    return float(line.rsplit(" ", 1)[1])
        return None

    def served_serial(self, sc, root, name="app.example.test"):
        """The serial of the certificate a new handshake gets, verified
        against pebble's root for `name`."""
        ctx = ssl.create_default_context(cafile=root)
        with socket.create_connection(("127.0.0.1", sc.port("public")), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname=name) as t:
                return t.getpeercert()["serialNumber"]


class IssuanceTest(AcmeTestBase):
    def test_issue_serve_restart_reuse(self):
        pebble = self.pebble()
        sc = self.sidecar(pebble.directory)
        serial = self.wait_serial(sc)
        st = self.status(sc)
        self.assertTrue(st["account"]["registered"])
        self.assertEqual(st["certificate"]["from"], "order")
        self.assertEqual(st["issuances"], 1)
        account_url = st["account"]["url"]
        self.assertTrue(account_url.startswith(f"https://127.0.0.1:{pebble.port}/"))

        # Served, chained to pebble's root, for both names (SNI), through to the app.
        for name in DOMAINS:
            self.assertEqual(self.served_serial(sc, pebble.root_path, name), serial)
        code, body, err = curl("--cacert", pebble.root_path, "--resolve",
                               f"www.example.test:{sc.port('public')}:127.0.0.1",
                               f"https://www.example.test:{sc.port('public')}/hello")
        self.assertEqual((code, body), (0, b"hello\n"), err)
        out = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{sc.port('public')}",
             "-servername", "app.example.test", "-CAfile", pebble.root_path,
             "-verify_return_error", "-verify_hostname", "app.example.test"],
            input=b"", capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        self.assertIn(b"Verify return code: 0 (ok)", out.stdout)
        self.assertIn(b"Pebble Intermediate CA", out.stdout)
        # pebble knows it as its own, valid certificate.
        cert_status = json.loads(pebble.mgmt_get(f"/cert-status-by-serial/{serial.lower()}"))
        self.assertEqual(cert_status["Status"], "Valid")

        certs = json.loads(sc.admin_get("/certs")[1])["certificates"]
        mine = [c for c in certs if c["listener"] == "public"]
        self.assertEqual(mine[0]["source"], "acme")
        self.assertEqual(mine[0]["serial"], serial)
        self.assertEqual(sorted(mine[0]["dns_sans"]), sorted(DOMAINS))
        self.assertEqual(mine[0]["key_type"], "EC P-256")
        self.assertEqual(self.metric(sc, "sidecar_acme_attempts_total", kind="issuance",
                                     result="success"), 1)
        self.assertGreater(self.metric(sc, "sidecar_acme_next_renewal_timestamp_seconds"),
                           time.time())
        log = sc.output()
        self.assertIn("acme: account", log)
        self.assertIn(f"serving certificate serial {serial}", log)

        # Stored: 0600 files, 0700 directories, `current` pointing at the serial.
        for f in ("account.key", "account.json", "current/cert.pem", "current/key.pem",
                  "current/meta.json"):
            mode = stat.S_IMODE(os.stat(os.path.join(self.storage, f)).st_mode)
            self.assertEqual(mode, 0o600, f)
        for d in ("", "certificates", f"certificates/{serial}"):
            mode = stat.S_IMODE(os.stat(os.path.join(self.storage, d)).st_mode)
            self.assertEqual(mode, 0o700, d)
        self.assertEqual(os.readlink(os.path.join(self.storage, "current")),
                         f"certificates/{serial}")
        self.assertEqual(pebble.new_accounts(), 1)

        # A restart serves the stored certificate at once and keeps the account.
        sc.stop()
        sc = self.sidecar(pebble.directory)
        self.assertEqual(self.wait_serial(sc, timeout=10), serial)
        self.assertEqual(self.served_serial(sc, pebble.root_path), serial)
        st = self.status(sc)
        self.assertEqual(st["certificate"]["from"], "storage")
        self.assertEqual(st["issuances"] + st["renewals"], 0)
        # Renewing on demand: a new order with the stored account, no newAccount.
        self.assertEqual(sc.admin_get("/acme/renew", method="POST")[0], 200)
        renewed = self.wait_serial(sc, other_than=serial)
        st = self.status(sc)
        self.assertEqual(st["account"]["url"], account_url)
        self.assertFalse(st["account"]["registered"])
        self.assertEqual(st["renewals"], 1)
        self.assertEqual(pebble.new_accounts(), 1)
        self.assertEqual(self.served_serial(sc, pebble.root_path), renewed)
        # The previous certificate is kept beside the new one.
        self.assertEqual(sorted(os.listdir(os.path.join(self.storage, "certificates"))),
                         sorted([serial, renewed]))

    def test_reload_with_other_domains_orders_at_once(self):
        pebble = self.pebble()
        sc = self.sidecar(pebble.directory)
        first = self.wait_serial(sc)
        with open(sc.config_path) as f:
            config = f.read()
        with open(sc.config_path, "w") as f:
            f.write(config.replace(", www.example.test", ""))
        sc.signal(signal.SIGHUP)
        second = self.wait_serial(sc, other_than=first)
        certs = json.loads(sc.admin_get("/certs")[1])["certificates"]
        self.assertEqual([c["dns_sans"] for c in certs if c["serial"] == second],
                         [["app.example.test"]])
        self.assertIn("the stored certificate is for app.example.test, www.example.test", sc.output())
        self.assertEqual(self.status(sc)["issuances"] + self.status(sc)["renewals"], 2)
        self.assertEqual(pebble.new_accounts(), 1)

    def test_server_that_forgot_the_account_gets_it_registered_again(self):
        pebble = self.pebble(nonce_reject=15)  # badNonce answers are retried
        sc = self.sidecar(pebble.directory)
        first = self.wait_serial(sc)
        with open(os.path.join(self.storage, "account.key")) as f:
            key = f.read()
        sc.stop()
        pebble.stop()
        # A new pebble (no state) at the same directory URL: the stored
        # account URL is unknown there.
        pebble = self.pebble(port=pebble.port)
        sc = self.sidecar(pebble.directory)
        self.assertEqual(self.wait_serial(sc, timeout=10), first)
        sc.admin_get("/acme/renew", method="POST")
        self.wait_serial(sc, other_than=first)
        self.assertIn("registering again", sc.output())
        with open(os.path.join(self.storage, "account.key")) as f:
            self.assertEqual(f.read(), key)  # the same key, registered anew
        self.assertEqual(pebble.new_accounts(), 1)


class RenewalTest(AcmeTestBase):
    def test_short_lived_certificates_renew_without_dropping_connections(self):
        # 15 s certificates: renewal at 2/3 of the lifetime, about 10 s in.
        pebble = self.pebble(validity=15)
        sc = self.sidecar(pebble.directory)
        first = self.wait_serial(sc)
        ctx = ssl.create_default_context(cafile=pebble.root_path)
        kept = http.client.HTTPSConnection("app.example.test", sc.port("public"), context=ctx,
                                           timeout=10)
        kept.sock = ctx.wrap_socket(
            socket.create_connection(("127.0.0.1", sc.port("public")), timeout=10),
            server_hostname="app.example.test")
        kept.request("GET", "/hello")
        self.assertEqual(kept.getresponse().read(), b"hello\n")
        self.assertEqual(kept.sock.getpeercert()["serialNumber"], first)

        # New connections all along, while the certificate is replaced.
        failures, done, stop = [], [0], threading.Event()

        def load():
            while not stop.is_set():
                try:
                    code, body, err = curl("--cacert", pebble.root_path, "--resolve",
                                           f"app.example.test:{sc.port('public')}:127.0.0.1",
                                           f"https://app.example.test:{sc.port('public')}/hello",
                                           timeout=10)
                    if (code, body) != (0, b"hello\n"):
                        failures.append(err)
                    done[0] += 1
                except subprocess.TimeoutExpired as e:
                    failures.append(str(e))
                time.sleep(0.05)
        t = threading.Thread(target=load)
        t.start()
        try:
            second = self.wait_serial(sc, other_than=first, timeout=60)
        finally:
            stop.set()
            t.join(timeout=30)
        self.assertEqual(failures, [])
        self.assertGreater(done[0], 0)
        self.assertEqual(self.served_serial(sc, pebble.root_path), second)
        # The connection from before the renewal still works, on its certificate.
        kept.request("GET", "/hello")
        self.assertEqual(kept.getresponse().read(), b"hello\n")
        self.assertEqual(kept.sock.getpeercert()["serialNumber"], first)
        kept.close()
        st = self.status(sc)
        self.assertGreaterEqual(st["renewals"], 1)
        self.assertIn("renewing at 2/3 of the lifetime", sc.output())
        self.assertEqual(pebble.new_accounts(), 1)


class RetryTest(AcmeTestBase):
    def test_unreachable_server_is_retried_with_backoff_then_succeeds(self):
        port = free_port()
        directory = f"https://127.0.0.1:{port}/dir"
        sc = self.sidecar(directory, "  retry_back_off: { base_interval: 200ms, max_interval: 1s }")
        wait_for(lambda: self.status(sc)["consecutive_failures"] >= 3, 30, 0.1, "3 failures")
        st = self.status(sc)
        self.assertEqual(st["state"], "retrying")
        self.assertIsNotNone(st["next_attempt"])
        self.assertIn(directory, st["last_error"])
        self.assertGreaterEqual(self.metric(sc, "sidecar_acme_attempts_total", kind="issuance",
                                            result="failure"), 3)
        # Meanwhile the TLS listener answers with the self-signed stand-in.
        certs = json.loads(sc.admin_get("/certs")[1])["certificates"]
        self.assertEqual([c["source"] for c in certs if c["listener"] == "public"],
                         ["self-signed"])
        self.assertIn("next attempt in", sc.output())
        # pebble appears on that port: the next retry succeeds.
        self.pebble(port=port)
        self.wait_serial(sc, timeout=30)
        self.assertEqual(self.status(sc)["consecutive_failures"], 0)

    def test_retry_after_is_respected(self):
        # pebble has no rate limits: a receiver answers like an ACME server that
        # has one (RFC 8555 6.6: 429, rateLimited, Retry-After) and records when
        # it was asked.
        times = []

        class Limited(BaseHTTPRequestHandler):
            def do_GET(self):
                times.append(time.monotonic())
                body = json.dumps({"type": "urn:ietf:params:acme:error:rateLimited",
                                   "detail": "too many new orders recently",
                                   "status": 429}).encode()
                self.send_response(429)
                self.send_header("Content-Type", "application/problem+json")
                self.send_header("Retry-After", "3")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Limited)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(self.dir, "server.pem"),
                            os.path.join(self.dir, "server.key"))
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        directory = f"https://127.0.0.1:{server.server_address[1]}/dir"
        sc = self.sidecar(directory,
                          "  retry_back_off: { base_interval: 100ms, max_interval: 200ms }")
        wait_for(lambda: len(times) >= 1, 10, 0.05, "the first request")
        # Asking for a renewal does not go around the server's Retry-After.
        wait_for(lambda: self.status(sc)["rate_limited"] >= 1, 10, 0.05, "the 429")
        sc.admin_get("/acme/renew", method="POST")
        wait_for(lambda: len(times) >= 3, 20, 0.05, "two retries")
        for a, b in zip(times, times[1:]):
            self.assertGreaterEqual(b - a, 2.9)  # never sooner than Retry-After: 3
        st = self.status(sc)
        self.assertIn("rateLimited", st["last_error"])
        self.assertIn("Retry-After 3s", st["last_error"])
        self.assertGreaterEqual(self.metric(sc, "sidecar_acme_rate_limited_total"), 2)


class ConfigTest(unittest.TestCase):
    def validate(self, config):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(config)
            f.flush()
            p = subprocess.run([BIN, "validate", "-c", f.name], capture_output=True, text=True,
                               timeout=30)
            return p.returncode, p.stderr.replace(f.name, "FILE")

    def test_acme_listeners_are_checked(self):
        code, err = self.validate("""
clusters: [ { name: app, endpoints: [ "127.0.0.1:1" ] } ]
listeners:
  - name: http
    address: 127.0.0.1:0
    tls: {}
    routes: [ { match: { prefix: / }, cluster: app } ]
  - name: plain
    address: 127.0.0.1:0
    routes: [ { match: { prefix: / }, cluster: app } ]
  - name: other
    address: 127.0.0.1:0
    tls: {}
    routes: [ { match: { prefix: / }, cluster: app } ]
acme:
  domains: [ app.example.com ]
  storage: /tmp/acme
  listener: plain
  challenge_listener: http
""")
        self.assertEqual(code, 64, err)
        self.assertIn("FILE:18:13: acme.listener: listener 'plain' has no tls", err)
        self.assertIn("FILE:19:23: acme.challenge_listener: listener 'http' has tls", err)
        self.assertIn("FILE:6:10: listeners[0].tls needs certificates", err)
        self.assertIn("FILE:13:10: listeners[2].tls needs certificates", err)


if __name__ == "__main__":
    run_tests()
