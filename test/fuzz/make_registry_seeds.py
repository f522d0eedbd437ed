#!/usr/bin/python3
"""Writes the seed corpus of the registry fuzz target (test/fuzz/corpus/registry).

Each seed is one byte choosing the reader (0 range, 1 lease, 2 token, 3 watch
message, 4 error, 5 instance value, 6 base64), then the input: answers as
etcd 3.4's JSON gateway gives them. File names are content hashes.
"""
import hashlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "registry")

SEEDS = {
    0: [b'{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437",'
        b'"revision":"9","raft_term":"2"},"kvs":[{"key":"L3NlcnZpY2VzL3VzZXJzL2Ex",'
        b'"create_revision":"2","mod_revision":"8","version":"3","value":"eyJhZGRyZXNzIjoiMTI3'
        b'LjAuMC4xIiwicG9ydCI6ODA4MX0=","lease":"7587862345678901234"}],"count":"1"}',
        b'{"header":{"revision":"3"}}', b'{"kvs":[{"key":"%%"}]}', b'{"kvs":{}}'],
    1: [b'{"header":{"revision":"1"},"ID":"4111120150790928135","TTL":"5"}',
        b'{"result":{"header":{"revision":"1"},"ID":"12345"}}',
        b'{"result":{"ID":"1","TTL":"10"}}', b'{"TTL":1e99}', b'{"ID":"-9223372036854775808"}'],
    2: [b'{"header":{},"token":"QpFtBwFfgaUAMBmw.9"}', b'{"token":""}'],
    3: [b'{"result":{"header":{"revision":"4"},"created":true}}',
        b'{"result":{"header":{"revision":"6"},"events":[{"kv":{"key":"L2EvMQ==",'
        b'"mod_revision":"5","value":"eA=="}},{"type":"DELETE","kv":{"key":"L2EvMg==",'
        b'"mod_revision":"6"}}]}}',
        b'{"result":{"header":{"revision":"9"},"canceled":true,"compact_revision":"7",'
        b'"cancel_reason":"mvcc: required revision has been compacted"}}',
        b'{"error":{"grpc_code":16,"http_code":401,"message":"etcdserver: invalid auth token"}}'],
    4: [b'{"error":"etcdserver: requested lease not found","message":"etcdserver: requested '
        b'lease not found","code":5}', b'{"error":7}', b'{"error":{"grpc_code":"x"}}'],
    5: [b'{"address":"10.0.0.7","port":8000,"tags":["v2","canary"],"metadata":{"zone":"a"},'
        b'"weight":3,"health":"passing","started_at":"2026-11-21T10:00:00Z"}',
        b'{"address":"::1","port":"81"}', b'{"address":"a","port":0}', b'[1,2]'],
    6: [b'Zm9vYmFy', b'Zg==', b'//4=', b'Z', b'Zm9v!'],
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for reader, inputs in SEEDS.items():
        for data in inputs:
            seed = bytes([reader]) + data
            name = hashlib.sha1(seed).hexdigest()
            with open(os.path.join(OUT, name), "wb") as f:
                f.write(seed)


if __name__ == "__main__":
    main()
