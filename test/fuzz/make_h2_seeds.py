#!/usr/bin/python3
"""Writes the seed corpus of the HTTP/2 downstream codec's fuzz target
(test/fuzz/corpus/http2).

Each seed is the byte stream a client sends on one connection, as the codec
reads it from the socket: the connection preface (RFC 9113 3.4), the
client's SETTINGS, then frames. Valid requests (GET, POST with DATA,
trailers, gRPC, extended CONNECT, padding, priority, window updates,
HEADERS + CONTINUATION) and the bad shapes the codec must refuse cleanly
(frames on the wrong stream, bad lengths, bad flags, HPACK errors, invalid
pseudo-headers, floods in miniature). A target that wants the preface
stripped, or a split point as the http1 target has, can derive it; the
stream here is what is on the wire.

Header blocks are written by hand (RFC 7541): static-table indices and
literals without indexing, plus a few dynamic-table and Huffman cases, so
that the seeds need nothing but python3. Run again after adding cases; file
names are content hashes, so unchanged seeds keep their names.
`make_h2_seeds.py --check` has python3-h2 parse them: the valid ones must.
"""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "http2")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20


def frame(ftype, flags, sid, payload=b"", length=None):
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def settings(pairs=(), ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0, b"".join(struct.pack(">HI", k, v)
                                                          for k, v in pairs))


def integer(value, prefix_bits, first_byte_flags=0):
    """An HPACK integer (RFC 7541 5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = bytearray([first_byte_flags | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def string(s):
    s = s.encode() if isinstance(s, str) else s
    return integer(len(s), 7) + s


STATIC = {(":authority", ""): 1, (":method", "GET"): 2, (":method", "POST"): 3,
          (":path", "/"): 4, (":path", "/index.html"): 5, (":scheme", "http"): 6,
          (":scheme", "https"): 7, (":status", "200"): 8}
STATIC_NAMES = {":authority": 1, ":method": 2, ":path": 4, ":scheme": 6, ":status": 8,
                "content-length": 28, "content-type": 31, "host": 38, "te": None,
                "user-agent": 58}


def block(headers, index_new=False):
    """A header block: exact static matches as indexed fields, the rest as
    literals without indexing (or with incremental indexing)."""
    out = bytearray()
    for name, value in headers:
        if (name, value) in STATIC:
            out += integer(STATIC[(name, value)], 7, 0x80)
            continue
        idx = STATIC_NAMES.get(name)
        if index_new:
            out += integer(idx, 6, 0x40) if idx else b"\x40" + string(name)
        else:
            out += integer(idx, 4, 0x00) if idx else b"\x00" + string(name)
        out += string(value)
    return bytes(out)


def get(path="/", authority="example.test", extra=()):
    return [(":method", "GET"), (":scheme", "http"), (":authority", authority),
            (":path", path), *extra]


def post(path="/upload", extra=()):
    return [(":method", "POST"), (":scheme", "http"), (":authority", "example.test"),
            (":path", path), *extra]


def hdrs(sid, headers, end_stream=True, flags=0, **kw):
    return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0) | flags, sid,
                 block(headers, **kw))


def start(client_settings=((0x3, 100), (0x4, 65535))):
    return PREFACE + settings(client_settings)


def grpc_message(msg):
    return struct.pack(">BI", 0, len(msg)) + msg


SEEDS = {
    # -- valid --
    "get": start() + hdrs(1, get()),
    "get-settings-ack": start() + settings(ack=True) + hdrs(1, get("/a?b=c")),
    # The second block refers to the dynamic table the first one filled:
    # 62 = x-a: 1, 63 = :path /x, 64 = :authority example.test.
    "two-gets-dynamic-table": start() + hdrs(1, get("/x", extra=[("x-a", "1")]), index_new=True) +
    frame(HEADERS, END_HEADERS | END_STREAM, 3, b"\x82\x86\xc0\x84\xbe"),
    "huffman-authority": start() + frame(HEADERS, END_HEADERS | END_STREAM, 1,
                                         b"\x82\x86\x84\x41\x8c\xf1\xe3\xc2\xe5\xf2\x3a\x6b\xa0"
                                         b"\xab\x90\xf4\xff"),
    "post-data": start() + hdrs(1, post(extra=[("content-length", "5")]), end_stream=False) +
    frame(DATA, END_STREAM, 1, b"hello"),
    "post-data-chunks-no-length": start() + hdrs(1, post(), end_stream=False) +
    frame(DATA, 0, 1, b"a" * 100) + frame(DATA, 0, 1, b"") + frame(DATA, END_STREAM, 1, b"b"),
    "post-padded-data": start() + hdrs(1, post(), end_stream=False) +
    frame(DATA, PADDED | END_STREAM, 1, b"\x05hello\x00\x00\x00\x00\x00"),
    "headers-padded-priority": start() + frame(
        HEADERS, END_HEADERS | END_STREAM | PADDED | PRIO, 1,
        b"\x03" + struct.pack(">IB", 0x80000000, 15) + block(get()) + b"\x00\x00\x00"),
    "priority-frames": start() + frame(PRIORITY, 0, 3, struct.pack(">IB", 0, 200)) +
    frame(PRIORITY, 0, 5, struct.pack(">IB", 0x80000003, 0)) + hdrs(1, get()),
    "window-updates": start() + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)) +
    hdrs(1, get(), end_stream=False) + frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 65536)) +
    frame(DATA, END_STREAM, 1, b""),
    "headers-continuation": start() + frame(HEADERS, END_STREAM, 1, block(get())[:5]) +
    frame(CONTINUATION, 0, 1, block(get())[5:9]) +
    frame(CONTINUATION, END_HEADERS, 1, block(get())[9:]),
    "trailers": start() + hdrs(1, post(extra=[("te", "trailers")]), end_stream=False) +
    frame(DATA, 0, 1, b"body") + hdrs(1, [("x-checksum", "abc")], end_stream=True),
    "grpc-unary": start() + hdrs(1, post("/pkg.Svc/Method", extra=[
        ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", "300m")]),
        end_stream=False) + frame(DATA, END_STREAM, 1, grpc_message(b"\x0a\x03abc")),
    "extended-connect-websocket": start() + hdrs(1, [
        (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
        (":path", "/chat"), (":authority", "example.test"), ("sec-websocket-version", "13")],
        end_stream=False) + frame(DATA, 0, 1, b"\x81\x85\x01\x02\x03\x04\x69\x67\x6f\x68\x6e"),
    "ping-and-goaway": start() + frame(PING, 0, 0, b"12345678") +
    frame(PING, ACK, 0, b"87654321") + hdrs(1, get()) + frame(GOAWAY, 0, 0,
                                                              struct.pack(">II", 1, 0) + b"bye"),
    "rst-after-headers": start() + hdrs(1, get(), end_stream=False) +
    frame(RST_STREAM, 0, 1, struct.pack(">I", 8)) + hdrs(3, get()),
    "unknown-frame-type": start() + frame(0x20, 0xFF, 0, b"ignored") + hdrs(1, get()) +
    frame(0xFA, 0, 1, b"extension"),
    "settings-all": start(((0x1, 0), (0x2, 0), (0x3, 1), (0x4, 0), (0x5, 16777215),
                           (0x6, 1024), (0x8, 1), (0xFF, 7))) + hdrs(1, get()),
    "table-size-update": start() + frame(HEADERS, END_HEADERS | END_STREAM, 1,
                                         b"\x20" + block(get())),
    # -- bad: connection or stream errors --
    "bad-preface": b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings(),
    "http1-on-h2": b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n",
    "settings-bad-length": PREFACE + frame(SETTINGS, 0, 0, b"\x00\x04\x00\x01"),
    "settings-on-stream": PREFACE + frame(SETTINGS, 0, 1, b""),
    "settings-ack-with-payload": start() + frame(SETTINGS, ACK, 0, b"\x00\x01\x00\x00\x00\x00"),
    "settings-window-too-big": start(((0x4, 0x80000000),)),
    "ping-bad-length": start() + frame(PING, 0, 0, b"1234"),
    "window-update-zero": start() + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0)),
    "window-overflow": start() + hdrs(1, get(), end_stream=False) +
    frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 0x7FFFFFFF)) +
    frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 0x7FFFFFFF)),
    "data-on-stream-0": start() + frame(DATA, 0, 0, b"x"),
    "headers-even-stream": start() + hdrs(2, get()),
    "stream-id-goes-back": start() + hdrs(5, get()) + hdrs(3, get()),
    "continuation-without-headers": start() + frame(CONTINUATION, END_HEADERS, 1, block(get())),
    "frame-between-continuations": start() + frame(HEADERS, END_STREAM, 1, block(get())[:4]) +
    frame(PING, 0, 0, b"12345678") + frame(CONTINUATION, END_HEADERS, 1, block(get())[4:]),
    "continuation-flood": start() + frame(HEADERS, END_STREAM, 1, block(get())) +
    b"".join(frame(CONTINUATION, 0, 1, block([("x-f%d" % i, "a" * 64)])) for i in range(40)),
    "continuation-empty-flood": start() + frame(HEADERS, END_STREAM, 1, block(get())) +
    frame(CONTINUATION, 0, 1) * 200,
    "padding-too-long": start() + frame(HEADERS, END_HEADERS | END_STREAM | PADDED, 1,
                                        b"\xff" + block(get())),
    "priority-self-dependency": start() + frame(PRIORITY, 0, 1, struct.pack(">IB", 1, 16)),
    "push-promise-from-client": start() + frame(PUSH_PROMISE, END_HEADERS, 1,
                                                struct.pack(">I", 2) + block(get())),
    "frame-too-large": start() + frame(DATA, 0, 1, b"x" * 16, length=16385) + b"x" * 16369,
    "length-lies": start() + frame(HEADERS, END_HEADERS, 1, b"\x82", length=100),
    "hpack-bad-index": start() + frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xff\xff\xff\x7f"),
    "hpack-bad-huffman-padding": start() + frame(HEADERS, END_HEADERS | END_STREAM, 1,
                                                 b"\x82\x86\x84\x41\x81\x00"),
    "missing-path": start() + hdrs(1, [(":method", "GET"), (":scheme", "http"),
                                       (":authority", "example.test")]),
    "uppercase-name": start() + hdrs(1, get(extra=[("X-Upper", "1")])),
    "connection-specific": start() + hdrs(1, get(extra=[("connection", "keep-alive"),
                                                         ("te", "gzip")])),
    "pseudo-after-regular": start() + hdrs(1, [(":method", "GET"), ("x-a", "1"),
                                               (":path", "/"), (":scheme", "http")]),
    "content-length-mismatch": start() + hdrs(1, post(extra=[("content-length", "10")]),
                                              end_stream=False) + frame(DATA, END_STREAM, 1, b"12345"),
    # Streams over max_concurrent_streams (100 in the target's config):
    # refused with REFUSED_STREAM, their DATA and trailers dropped, their
    # header blocks still decoded; then a flood of them closes the connection.
    "over-stream-limit": start() + settings(ack=True) +
    b"".join(hdrs(i, get(), end_stream=False) for i in range(1, 221, 2)) +
    frame(DATA, 0, 203, b"refused") + hdrs(205, [("x-trailer", "1")]) +
    frame(RST_STREAM, 0, 207, struct.pack(">I", 8)) + hdrs(221, get(), index_new=True),
    "refused-stream-flood": start() + b"".join(hdrs(i, get(), end_stream=False)
                                               for i in range(1, 601, 2)),
    "rapid-reset": start() + b"".join(hdrs(i, get()) + frame(RST_STREAM, 0, i, struct.pack(">I", 8))
                                      for i in range(1, 80, 2)),
    "settings-flood": start() + settings(((0x4, 65535),)) * 200,
    "ping-flood": start() + frame(PING, 0, 0, b"floodpin") * 300,
}


FIRST_BAD = "bad-preface"


def check():
    """Feeds every seed to python3-h2's server side: the valid ones must
    parse, the others are listed with the error h2 finds (floods and
    half-sent blocks parse: they are bad by amount, not by form)."""
    import h2.config
    import h2.connection
    valid = True
    for name, data in SEEDS.items():
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        try:
            conn.receive_data(data)
            verdict = "parses"
        except Exception as e:  # noqa: BLE001 (any h2 error is a verdict)
            verdict = f"{type(e).__name__}: {str(e)[:60]}"
        good = list(SEEDS).index(name) < list(SEEDS).index(FIRST_BAD)
        if good and verdict != "parses":
            valid = False
        print(f"{'valid' if good else 'bad  '} {name:30} {verdict}")
    return 0 if valid else 1


def main():
    import sys
    if sys.argv[1:] == ["--check"]:
        sys.exit(check())
    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        os.remove(os.path.join(OUT, old))
    for name, data in SEEDS.items():
        digest = hashlib.sha1(data).hexdigest()
        with open(os.path.join(OUT, digest), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {OUT}")


if __name__ == "__main__":
    main()
