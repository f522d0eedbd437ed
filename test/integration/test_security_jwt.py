#!/usr/bin/python3
"""jwt_authn and rbac with real peers: tokens minted with PyJWT for every
algorithm, keys made with cryptography (OpenSSL), a local JWKS file, and a
JWKS server started here that rotates keys and counts its fetches. Every
refused request is checked not to have reached the upstream (its request
count), and the access log and /metrics to say why."""
import base64
import hashlib
import hmac
import json
import os
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from harness import Sidecar, Upstream, curl, run_tests, wait_for

ISSUER = "https://issuer.example"
REMOTE = "Host: remote.example"  # the route whose requirement is the remote_jwks provider


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key, alg, kid):
    jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


def new_key(alg):
    if alg.startswith(("RS", "PS")):
        return rsa.generate_private_key(65537, 2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    return ed25519.Ed25519PrivateKey.generate()


class JwksServer:
    """Serves {"keys": [...]} at /jwks; counts fetches; keys can change."""

    def __init__(self):
        self.keys = []
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.fetches += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class JwtAuthn(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="sidecar-jwt-")
        cls.algs = ["RS256", "PS256", "ES256", "ES384", "EdDSA"]
        cls.keys = {alg: new_key(alg) for alg in cls.algs}
        cls.jwks_path = os.path.join(cls.dir.name, "jwks.json")
        with open(cls.jwks_path, "w") as f:
            json.dump({"keys": [public_jwk(k, a, a) for a, k in cls.keys.items()]}, f)
        cls.remote_keys = {kid: new_key("ES256") for kid in ("r1", "r2", "r3")}
        cls.idp = JwksServer()
        cls.idp.keys = [public_jwk(cls.remote_keys["r1"], "ES256", "r1")]
        cls.log = os.path.join(cls.dir.name, "access.log")
        cls.up = Upstream()
        cls.sc = Sidecar(f"""
workers: 2
access_log:
  path: {cls.log}
  json_format:
    path: "%REQ(:PATH)%"
    code: "%RESPONSE_CODE%"
    details: "%RESPONSE_CODE_DETAILS%"
    auth: "%REQ(AUTHORIZATION)%"
clusters:
  - name: app
    endpoints: [ "{cls.up.address}" ]
  - name: idp
    endpoints: [ "{cls.idp.address}" ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    filters:
      - name: jwt_authn
        config:
          providers:
            local:
              issuer: {ISSUER}
              audiences: [ api ]
              local_jwks: {{ filename: {cls.jwks_path} }}
              claim_to_headers: [ {{ claim_name: sub, header_name: x-user }},
                                  {{ claim_name: org.team, header_name: x-team }} ]
            remote:
              issuer: {ISSUER}
              remote_jwks:
                http_uri: {{ uri: "http://idp.example/jwks", cluster: idp, timeout: 2s }}
                cache_duration: 10m
              forward: true
          rules:
            - match: {{ path: /hello }}
            - match: {{ prefix: / }}
              requires: {{ provider_name: local }}
          requirement_map:
            remote: {{ provider_name: remote }}
      - name: rbac
        config:
          rules:
            action: DENY
            policies:
              no-bob:
                principals: [ {{ jwt_claim: {{ name: sub, exact: bob }} }} ]
                permissions: [ {{ any: true }} ]
    routes:
      - match: {{ prefix: /, host: remote.example }}
        cluster: app
        typed_per_filter_config:
          jwt_authn: {{ requirement_name: remote }}
      - match: {{ prefix: / }}
        cluster: app
""")

    @classmethod
    def tearDownClass(cls):
        cls.sc.stop()
        cls.up.stop()
        cls.idp.stop()
        cls.dir.cleanup()

    def token(self, alg="ES256", kid=None, key=None, **claims):
        body = {"iss": ISSUER, "aud": "api", "sub": "alice", "exp": int(time.time()) + 600,
                "org": {"team": "payments"}}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.keys[alg], alg, headers={"kid": kid or alg})

    def access_log(self):
        if not os.path.exists(self.log):
            return ""
        with open(self.log) as f:
            return f.read()

    def served(self):
        return self.up.stats()["requests"]

    def get(self, path, token=None, headers=()):
        args = ["-o", "-", "-D", "-", self.sc.url(path)]
        if token is not None:
            args += ["-H", f"Authorization: Bearer {token}"]
        for h in headers:
            args += ["-H", h]
        rc, out, err = curl(*args)
        self.assertEqual(rc, 0, err)
        head, _, body = out.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        return int(lines[0].split()[1]), fields, body

    def refused(self, path, token, status=401, headers=()):
        """Sends the request; asserts the status and that the upstream never saw it."""
        before = self.served()
        code, fields, body = self.get(path, token, headers)
        self.assertEqual(code, status, body)
        self.assertEqual(self.served() - before, 1, "a refused request reached the upstream")
        return fields, body

    def test_every_algorithm_passes_with_claims_in_headers(self):
        for alg in self.algs:
            with self.subTest(alg=alg):
                code, _, body = self.get("/headers", self.token(alg))
                self.assertEqual(code, 200, body)
                seen = {k.lower(): v for k, v in json.loads(body)["headers"]}
                self.assertEqual(seen.get("x-user"), "alice")
                self.assertEqual(seen.get("x-team"), "payments")
                self.assertNotIn("authorization", seen)  # forward: false strips the token

    def test_spoofed_claim_header_is_replaced(self):
        code, _, body = self.get("/headers", self.token(sub="carol"), ["X-User: admin"])
        self.assertEqual(code, 200)
        users = [v for k, v in json.loads(body)["headers"] if k.lower() == "x-user"]
        self.assertEqual(users, ["carol"])

    def test_bad_tokens_are_refused_before_the_upstream(self):
        rsa_pem = self.keys["RS256"].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "RS256"}).encode())
        payload = b64(json.dumps({"iss": ISSUER, "aud": "api", "sub": "eve",
                                  "exp": int(time.time()) + 600}).encode())
        confusion = f"{header}.{payload}." + b64(
            hmac.new(rsa_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        none = b64(b'{"alg":"none","typ":"JWT"}') + "." + payload + "."
        good = self.token("ES256")
        h, p, s = good.split(".")
        tampered = h + "." + b64(json.dumps({"iss": ISSUER, "aud": "api", "sub": "root",
                                             "exp": int(time.time()) + 600}).encode()) + "." + s
        cases = {
            "missing": None,
            "expired": self.token(exp=int(time.time()) - 3600),
            "not_yet_valid": self.token(nbf=int(time.time()) + 3600),
            "issuer_not_allowed": self.token(iss="https://evil.example"),
            "audience_not_allowed": self.token(aud="other"),
            "bad_signature": tampered,
            "alg_not_allowed": none,
            "unknown_kid": self.token("ES256", kid="nope"),
            "malformed": "not.a.jwt",
            "too_large": self.token(pad="x" * 20000),
        }
        for reason, token in cases.items():
            with self.subTest(reason=reason):
                fields, body = self.refused("/api/x", token)
                challenge = fields.get("www-authenticate", "")
                self.assertTrue(challenge.startswith('Bearer realm="127.0.0.1'), challenge)
                if reason == "missing":
                    self.assertNotIn("error=", challenge)
                else:
                    self.assertIn('error="invalid_token"', challenge)
                if token:
                    self.assertNotIn(token.encode(), body)
        # alg confusion: an RSA key's PEM used as an HMAC secret.
        self.refused("/api/x", confusion)
        # Headers over the listener's limit: the codec refuses them first.
        self.refused("/api/x", self.token(pad="x" * 70000), status=431)
        # The access log says why, and never holds a token.
        wait_for(lambda: "jwt_authn_too_large" in self.access_log(), what="access log lines")
        lines = [json.loads(line) for line in self.access_log().splitlines() if line.strip()]
        details = {line["details"] for line in lines if line["code"] == 401}
        for reason in cases:
            self.assertIn(f"jwt_authn_{reason}", details)
        self.assertNotIn(good, self.access_log())
        metrics = self.sc.admin_get("/metrics")[1]
        self.assertIn('sidecar_jwt_authn_denied_total{reason="expired"} ', metrics)
        self.assertRegex(metrics, r'sidecar_jwt_authn_denied_total\{reason="missing"\} [1-9]')

    def test_a_rule_without_requires_needs_no_token(self):
        code, _, _ = self.get("/hello")
        self.assertEqual(code, 200)

    def test_rbac_denies_by_claim(self):
        fields, body = self.refused("/api/x", self.token(sub="bob"), status=403)
        self.assertIn(b"RBAC: access denied", body)
        wait_for(lambda: "rbac_access_denied_matched_policy[no-bob]" in self.access_log(),
                 what="the rbac line in the access log")
        self.assertRegex(self.sc.admin_get("/metrics")[1],
                         r'sidecar_rbac_denied_total\{policy="no-bob"\} [1-9]')

    def test_local_jwks_file_is_reloaded(self):
        new = new_key("ES256")
        token = self.token("ES256", kid="added", key=new)
        self.refused("/api/x", token)
        with open(self.jwks_path) as f:
            doc = json.load(f)
        doc["keys"].append(public_jwk(new, "ES256", "added"))
        tmp = self.jwks_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, self.jwks_path)
        try:
            wait_for(lambda: self.get("/headers", token)[0] == 200, timeout=10, interval=0.2,
                     what="the new key to be read")
        except TimeoutError:
            self.fail(self.sc.output())

    def test_remote_jwks_fetch_rotation_and_unknown_kid(self):
        code, _, body = self.get("/hello", self.token("ES256", kid="r1", key=self.remote_keys["r1"]),
                                 [REMOTE])
        self.assertEqual(code, 200, body)
        fetches = self.idp.fetches
        self.assertGreaterEqual(fetches, 1)
        # forward: true keeps the token for the upstream.
        code, _, body = self.get("/headers", self.token("ES256", kid="r1",
                                                         key=self.remote_keys["r1"]), [REMOTE])
        self.assertEqual(code, 200, body)
        self.assertIn(b"Bearer", body)
        self.assertEqual(self.idp.fetches, fetches)  # cached
        # The issuer rotates: r2 appears. A token with r2: one refetch, accepted.
        self.idp.keys = [public_jwk(self.remote_keys[k], "ES256", k) for k in ("r1", "r2")]
        code, _, body = self.get("/hello", self.token("ES256", kid="r2", key=self.remote_keys["r2"]),
                                 [REMOTE])
        self.assertEqual(code, 200, body)
        self.assertEqual(self.idp.fetches, fetches + 1)
        # r3 was never published: within 30 s no other refetch, 401.
        self.refused("/hello", self.token("ES256", kid="r3", key=self.remote_keys["r3"]), headers=[REMOTE])
        self.assertEqual(self.idp.fetches, fetches + 1)


if __name__ == "__main__":
    run_tests()
