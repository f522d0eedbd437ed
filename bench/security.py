#!/usr/bin/python3
"""CPU cost of the security filters (docs/security.md): sidecar CPU seconds
per 100k requests through one worker, plain vs jwt_authn (ES256, RS256),
rbac (20 policies, the last one matching), and ext_authz against a local
authorization server (nginx answering 200), all in front of one nginx
upstream on 127.0.0.1, loaded by wrk (50 connections).

    bench/security.py [build/sidecar] [--duration 5]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxy  # noqa: E402  (the proxy benchmark's helpers)

import jwt  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402


def sidecar(binary, port, upstream, filters):
    conf = proxy.write(os.path.join(proxy.WORK, "sidecar.yaml"), f"""
admin: {{ address: 127.0.0.1:0 }}
workers: 1
clusters:
  - {{ name: up, endpoints: [ "127.0.0.1:{upstream}" ] }}
  - {{ name: authz, endpoints: [ "127.0.0.1:{upstream}" ] }}
listeners:
  - name: bench
    address: "127.0.0.1:{port}"
    routes: [ {{ cluster: up }} ]
    filters: {filters or "[]"}
""")
    return proxy.Proc("sidecar", [binary, "run", "-c", conf, "--log-level", "warn"], port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary", nargs="?", default="build/sidecar")
    ap.add_argument("--duration", type=int, default=5)
    args = ap.parse_args()
    proxy.WORK = tempfile.mkdtemp(prefix="sidecar-bench-security-")
    keys = {"ES256": ec.generate_private_key(ec.SECP256R1()),
            "RS256": rsa.generate_private_key(65537, 2048)}
    jwks = {"keys": []}
    tokens = {}
    for alg, key in keys.items():
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
        jwk.update({"kid": alg, "alg": alg})
        jwks["keys"].append(jwk)
        tokens[alg] = jwt.encode({"iss": "https://issuer.example", "aud": "api", "sub": "alice",
                                  "exp": int(time.time()) + 3600}, key, alg,
                                 headers={"kid": alg})
    jwks_path = proxy.write(os.path.join(proxy.WORK, "jwks.json"), json.dumps(jwks))
    jwt_filter = f"""
      - name: jwt_authn
        config:
          providers:
            main:
              issuer: https://issuer.example
              audiences: [ api ]
              local_jwks: {{ filename: {jwks_path} }}
              claim_to_headers: [ {{ claim_name: sub, header_name: x-user }} ]
          rules: [ {{ match: {{ prefix: / }}, requires: {{ provider_name: main }} }} ]"""
    policies = "".join(f"""
              p{i}:
                principals: [ {{ header: {{ name: x-team, exact: team-{i} }} }} ]
                permissions: [ {{ url_path: {{ path: {{ prefix: /api-{i}/ }} }} }} ]"""
                       for i in range(19))
    rbac_filter = f"""
      - name: rbac
        config:
          rules:
            action: ALLOW
            policies:{policies}
              last:
                principals: [ {{ source_ip: 127.0.0.0/8 }} ]
                permissions: [ {{ methods: [ GET ] }} ]"""
    authz_filter = """
      - name: ext_authz
        config:
          http_service:
            server_uri: { uri: "http://authz", cluster: authz, timeout: 1s }
            path_prefix: /check"""
    cases = [("plain", "", None), ("jwt_authn ES256", jwt_filter, tokens["ES256"]),
             ("jwt_authn RS256", jwt_filter, tokens["RS256"]), ("rbac 20 policies", rbac_filter, None),
             ("ext_authz", authz_filter, None)]
    upstream_port = proxy.free_port()
    # nginx answers /hello and, for ext_authz, /check/hello (prefix /check).
    up = proxy.start_upstream(upstream_port)
    conf = os.path.join(proxy.WORK, "upstream.conf")
    with open(conf) as f:
        text = f.read()
    text = text.replace('location = /hello', 'location /check { return 200; }\n    location = /hello')
    with open(conf, "w") as f:
        f.write(text)
    up.stop()
    up = proxy.Proc("upstream-nginx", ["nginx", "-p", proxy.WORK, "-c", conf], upstream_port)
    rows = []
    try:
        for name, filters, token in cases:
            port = proxy.free_port()
            sc = sidecar(args.binary, port, upstream_port, filters)
            try:
                url = f"http://127.0.0.1:{port}/hello"
                cmd_extra = ["-H", f"Authorization: Bearer {token}"] if token else []
                before = proxy.cpu_seconds(sc.pids())
                result = wrk_with_headers(url, 50, args.duration, cmd_extra)
                cpu = proxy.cpu_seconds(sc.pids()) - before
                rows.append((name, result["rps"], cpu / result["requests"] * 100000,
                             result["p50_us"], result["errors"]))
            finally:
                sc.stop()
    finally:
        up.stop()
        shutil.rmtree(proxy.WORK, ignore_errors=True)
    print(f"{'case':<20} {'req/s':>9} {'CPU s/100k':>11} {'p50':>9}  errors")
    for name, rps, cpu, p50, errors in rows:
        print(f"{name:<20} {rps:>9.0f} {cpu:>11.2f} {p50:>7.0f}us  {errors}")


def wrk_with_headers(url, connections, duration, extra):
    import re
    import subprocess
    cmd = ["taskset", "-c", "0", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
           *extra, url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_us": proxy.parse_duration_us(lat["50"]),
            "errors": f"non2xx={errors.group(1)}" if errors else ""}


if __name__ == "__main__":
    main()
