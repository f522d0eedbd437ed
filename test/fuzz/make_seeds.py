#!/usr/bin/python3
"""Writes the seed corpus of the http1 fuzz target (test/fuzz/corpus/http1).

Each seed is: one byte choosing the mode (0 request head, 1 response head,
2 chunked body), one byte choosing where to split the input in two, then the
input. Run again after adding cases; file names are content hashes.
"""
import hashlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "http1")

REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
    b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    b"PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"\r\n\r\nHEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET http://svc:81/p HTTP/1.1\r\nHost: svc:81\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close, x-a\r\nX-A: 1\r\n\r\n",
    # smuggling shapes
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX: 1\r\n folded\r\n\r\n",
    b"GET / HTTP/1.1\nHost: h\n\n",
    b"GET / HTTP/1.1\r\nHost: h\rX: 1\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
]
RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.0 200\r\n\r\nbody",
    b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
]
CHUNKED = [
    b"5\r\nhello\r\n0\r\n\r\n",
    b"1;a=b;c=\"d\\\"e\"\r\nx\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\nGET",
    b"FFFFFFFFFFFFFFFF\r\nabc",
    b"5\nhello\r\n",
    b"5 \r\nhello\r\n",
    b"0\r\n\n",
    b"5;\r\nhello\r\n0\r\n\r\n",
]


def main():
    os.makedirs(OUT, exist_ok=True)
    n = 0
    for mode, inputs in ((0, REQUESTS), (1, RESPONSES), (2, CHUNKED)):
        for data in inputs:
            for split in (0, len(data) // 2, 7):
                seed = bytes([mode, split % 256]) + data
                name = hashlib.sha1(seed).hexdigest()
                with open(os.path.join(OUT, name), "wb") as f:
                    f.write(seed)
                n += 1
    print(f"wrote {n} seeds to {OUT}")


if __name__ == "__main__":
    main()
