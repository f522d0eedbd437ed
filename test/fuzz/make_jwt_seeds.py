#!/usr/bin/python3
"""Writes the seed corpus of the jwt fuzz target (test/fuzz/corpus/jwt) with
PyJWT and keys made here: a byte choosing the reader (0 token, 1 JWKS,
2 "JWKS\\ntoken"), then the input. File names are content hashes."""
import base64
import hashlib
import json
import os

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "jwt")
CLAIMS = {"iss": "https://issuer.example", "aud": ["api"], "sub": "alice", "exp": 1900000000,
          "nbf": 1600000000, "a": {"b": ["x", "y"]}}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = []
    hs = b"secret-secret-secret-secret"
    seeds.append(b"\0" + jwt.encode(CLAIMS, hs, "HS256", headers={"kid": "h"}).encode())
    seeds.append(b"\0" + b"eyJhbGciOiJub25lIn0." + b64(json.dumps(CLAIMS).encode()).encode() + b".")
    seeds.append(b"\0a.b.c")
    for name, key, alg in [("r", rsa.generate_private_key(65537, 2048), "RS256"),
                           ("p", rsa.generate_private_key(65537, 2048), "PS256"),
                           ("e", ec.generate_private_key(ec.SECP256R1()), "ES256"),
                           ("f", ec.generate_private_key(ec.SECP384R1()), "ES384"),
                           ("d", ed25519.Ed25519PrivateKey.generate(), "EdDSA")]:
        public = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
        public.update({"kid": name, "alg": alg})
        doc = json.dumps({"keys": [public]}).encode()
        token = jwt.encode(CLAIMS, key, alg, headers={"kid": name}).encode()
        seeds += [b"\1" + doc, b"\2" + doc + b"\n" + token, b"\0" + token]
    seeds.append(b"\1" + json.dumps({"kty": "oct", "k": b64(hs)}).encode())
    seeds.append(b"\1{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}")
    for s in seeds:
        with open(os.path.join(OUT, hashlib.sha1(s).hexdigest()), "wb") as f:
            f.write(s)


if __name__ == "__main__":
    main()
