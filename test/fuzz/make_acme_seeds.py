#!/usr/bin/python3
"""Writes the seed corpus of the acme fuzz target (test/fuzz/corpus/acme).

Each seed is one byte choosing the reader (0 problem, 1 directory,
2 authorization, 3 order, 4 account, 5 Retry-After, 6 PEM chain,
7 base64url), then the input. File names are content hashes.
"""
import hashlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "acme")

SEEDS = {
    0: [b'{"type":"urn:ietf:params:acme:error:rateLimited","detail":"slow down","status":429}',
        b'{"type":"urn:ietf:params:acme:error:malformed","detail":"x","subproblems":['
        b'{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"no",'
        b'"identifier":{"type":"dns","value":"example.net"}}]}',
        b'{"type":"urn:ietf:params:acme:error:badNonce"}', b'[]', b'{"type":5}'],
    1: [b'{"newNonce":"https://ca/nonce","newAccount":"https://ca/acct",'
        b'"newOrder":"https://ca/order","revokeCert":"https://ca/revoke",'
        b'"keyChange":"https://ca/key","meta":{"termsOfService":"https://ca/tos",'
        b'"externalAccountRequired":false}}',
        b'{"newNonce":1}', b'{"meta":[]}'],
    2: [b'{"status":"pending","identifier":{"type":"dns","value":"a.example"},'
        b'"challenges":[{"type":"http-01","url":"https://ca/c/1","status":"pending",'
        b'"token":"DGyRejmCefe7v4NfDGDKfA"},{"type":"dns-01","url":"https://ca/c/2",'
        b'"status":"pending","token":"x"}]}',
        b'{"status":"invalid","identifier":{"value":"a"},"challenges":[{"type":"http-01",'
        b'"error":{"type":"urn:ietf:params:acme:error:connection","detail":"refused"}}]}'],
    3: [b'{"status":"pending","identifiers":[{"type":"dns","value":"a.example"}],'
        b'"authorizations":["https://ca/authz/1"],"finalize":"https://ca/order/1/finalize"}',
        b'{"status":"valid","finalize":"f","certificate":"https://ca/cert/1"}',
        b'{"status":"invalid","finalize":"f","error":{"type":"urn:ietf:params:acme:error:badCSR"}}'],
    4: [b'{"status":"valid","contact":["mailto:ops@example.com"],"orders":"https://ca/o"}'],
    5: [b"120", b"0", b"Sun, 06 Nov 1994 08:49:37 GMT", b"Wed, 21 Oct 2099 07:28:00 GMT",
        b"99999999999999999999", b"-1"],
    6: [b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        b"-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\n", b"<html></html>"],
    7: [b"Zm9vYmFy", b"-__-", b"Zg==", b"a", b"\xff\x00"],
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for mode, inputs in SEEDS.items():
        for data in inputs:
            seed = bytes([mode]) + data
            name = hashlib.sha1(seed).hexdigest()
            with open(os.path.join(OUT, name), "wb") as f:
                f.write(seed)


if __name__ == "__main__":
    main()
