"""HTTP/2 frames written by hand, for the integration tests: what a correct
library refuses to send (invalid header blocks, CONTINUATION floods, rapid
reset, SETTINGS/PING floods, a reader that never opens its window), and a
reader that parses what comes back (hpack for header blocks, one decoder per
connection). RFC 9113 numbers throughout. Used by h2peer.py (which
re-exports all of it) and the tests.
"""
import select
import socket
import struct
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags (RFC 9113 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
FRAME_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
               "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# Settings identifiers (RFC 9113 6.5.2, RFC 8441 3).
HEADER_TABLE_SIZE = 0x1
ENABLE_PUSH = 0x2
MAX_CONCURRENT_STREAMS = 0x3
INITIAL_WINDOW_SIZE = 0x4
MAX_FRAME_SIZE = 0x5
MAX_HEADER_LIST_SIZE = 0x6
ENABLE_CONNECT_PROTOCOL = 0x8

# Error codes (RFC 9113 7).
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, \
    ENHANCE_YOUR_CALM, INADEQUATE_SECURITY, HTTP_1_1_REQUIRED = range(14)


# --------------------------------------------------------------------------
# frames by hand

def frame(ftype, flags, stream_id, payload=b""):
    """One frame: 24-bit length, type, flags, 31-bit stream id, payload."""
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) +
            struct.pack(">I", stream_id & 0x7FFFFFFF) + payload)


def settings_frame(settings=None, ack=False):
    payload = b"".join(struct.pack(">HI", k, v) for k, v in (settings or {}).items())
    return frame(SETTINGS, ACK if ack else 0, 0, payload)


def window_update(stream_id, increment):
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def rst_stream(stream_id, code=CANCEL):
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def ping(data=b"12345678", ack=False):
    return frame(PING, ACK if ack else 0, 0, data)


def goaway(last_stream_id, code=NO_ERROR, debug=b""):
    return frame(GOAWAY, 0, 0, struct.pack(">II", last_stream_id, code) + debug)


def encode_headers(headers):
    """A self-contained HPACK block: every field a literal never indexed (or a
    static-table index), so the block can be sent any number of times on any
    connection without touching the dynamic table. Names are taken as given
    (uppercase stays uppercase)."""
    enc = hpack.Encoder()
    fields = [hpack.NeverIndexedHeaderTuple(_b(n), _b(v)) for n, v in headers]
    return enc.encode(fields, huffman=False)


def _b(x):
    return x if isinstance(x, bytes) else str(x).encode()


def request_headers(method="GET", path="/", authority="test", scheme="http", extra=()):
    return [(":method", method), (":scheme", scheme), (":authority", authority),
            (":path", path), *extra]


class Frame:
    def __init__(self, ftype, flags, stream_id, payload):
        self.type, self.flags, self.stream_id, self.payload = ftype, flags, stream_id, payload
        self.headers = None  # decoded, for HEADERS (with its CONTINUATIONs)

    @property
    def name(self):
        return FRAME_NAMES[self.type] if self.type < len(FRAME_NAMES) else f"type{self.type}"

    @property
    def error_code(self):
        if self.type == RST_STREAM:
            return struct.unpack(">I", self.payload[:4])[0]
        if self.type == GOAWAY:
            return struct.unpack(">I", self.payload[4:8])[0]
        return None

    @property
    def last_stream_id(self):
        return struct.unpack(">I", self.payload[:4])[0] & 0x7FFFFFFF

    def settings(self):
        return {k: v for k, v in (struct.unpack(">HI", self.payload[i:i + 6])
                                  for i in range(0, len(self.payload) - 5, 6))}

    def __repr__(self):
        return f"<{self.name} flags={self.flags:#x} sid={self.stream_id} len={len(self.payload)}>"


class Outcome:
    """What happened to one stream (and its connection), as seen by a client."""

    def __init__(self):
        self.status = None
        self.headers = []        # final response headers, pseudo-headers included
        self.informational = []  # 1xx header lists
        self.body = b""
        self.trailers = []
        self.reset = None        # RST_STREAM error code
        self.goaway = None       # (error code, last stream id)
        self.closed = False      # the connection closed under the stream
        self.ended = False       # END_STREAM seen

    @property
    def done(self):
        return self.ended or self.reset is not None or self.closed

    def header(self, name, default=None):
        for n, v in self.headers:
            if n == name:
                return v
        return default

    def trailer(self, name, default=None):
        for n, v in self.trailers:
            if n == name:
                return v
        return default

    def __repr__(self):
        return (f"<Outcome status={self.status} body={len(self.body)}B reset={self.reset} "
                f"goaway={self.goaway} closed={self.closed} ended={self.ended}>")


class RawH2:
    """A client connection whose frames are written by hand; frames read back
    are parsed and header blocks decoded (one HPACK decoder per connection).
    SETTINGS and PING from the peer are acknowledged; DATA is acknowledged
    with WINDOW_UPDATE only when auto_window is set."""

    def __init__(self, port, host="127.0.0.1", settings=None, preface=True, rcvbuf=None,
                 timeout=10.0, auto_window=True, sock=None):
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect((host, port))
        self.sock = sock
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 24
        self.rbuf = bytearray()
        self.closed = False
        self.peer_settings = {}
        self.peer_settings_frames = []
        self.goaway = None
        self.auto_window = auto_window
        self.frames_read = []
        self.outcomes = {}
        self._block = None  # (HEADERS frame, bytearray) while CONTINUATIONs are due
        self.next_stream_id = 1
        if preface:
            self.send(PREFACE + settings_frame(settings or {}))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- writing --
    def send(self, data, timeout=10.0):
        """Writes all of data unless the connection fails or the deadline
        passes first; returns the number of bytes written."""
        view = memoryview(data)
        sent = 0
        deadline = time.monotonic() + timeout
        while sent < len(view):
            left = deadline - time.monotonic()
            if left <= 0:
                return sent
            try:
                _, w, _ = select.select([], [self.sock], [], min(left, 0.2))
                if not w:
                    continue
                n = self.sock.send(view[sent:sent + 262144], socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                self.closed = True
                return sent
            sent += n
        return sent

    def new_stream_id(self):
        sid = self.next_stream_id
        self.next_stream_id += 2
        return sid

    def headers(self, headers, stream_id=None, end_stream=True, block=None):
        """Sends one HEADERS frame (END_HEADERS set) carrying `headers` (or the
        ready-made `block`); returns the stream id."""
        sid = stream_id or self.new_stream_id()
        self.outcomes.setdefault(sid, Outcome())
        block = encode_headers(headers) if block is None else block
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        self.send(frame(HEADERS, flags, sid, block))
        return sid

    def request(self, method="GET", path="/", authority="test", extra=(), body=None):
        sid = self.headers(request_headers(method, path, authority, extra=extra),
                           end_stream=body is None)
        if body is not None:
            self.data(sid, body, end_stream=True)
        return sid

    def data(self, stream_id, payload, end_stream=False):
        for i in range(0, max(len(payload), 1), 16384):
            last = i + 16384 >= len(payload)
            self.send(frame(DATA, END_STREAM if (end_stream and last) else 0, stream_id,
                            payload[i:i + 16384]))

    # -- reading --
    def read_frame(self, timeout=5.0):
        """The next frame (HEADERS complete with its CONTINUATIONs, decoded), or
        None when the connection closed or nothing came before the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            f = self._parse_one()
            if f is not None:
                if f.type == CONTINUATION or (f.type == HEADERS and not f.flags & END_HEADERS):
                    f = self._continue_block(f)
                    if f is None:
                        continue
                elif f.type in (HEADERS, PUSH_PROMISE):
                    f.headers = self._decode(self._header_block(f))
                self._note(f)
                return f
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                r, _, _ = select.select([self.sock], [], [], min(left, 0.2))
                if not r:
                    continue
                chunk = self.sock.recv(262144)
            except (ConnectionResetError, BrokenPipeError, OSError):
                chunk = b""
            if not chunk:
                self.closed = True
                for o in self.outcomes.values():
                    if not o.done:
                        o.closed = True
                continue
            self.rbuf += chunk

    def _parse_one(self):
        if len(self.rbuf) < 9:
            return None
        length = int.from_bytes(self.rbuf[0:3], "big")
        if len(self.rbuf) < 9 + length:
            return None
        f = Frame(self.rbuf[3], self.rbuf[4], int.from_bytes(self.rbuf[5:9], "big") & 0x7FFFFFFF,
                  bytes(self.rbuf[9:9 + length]))
        del self.rbuf[:9 + length]
        return f

    @staticmethod
    def _header_block(f):
        p = f.payload
        if f.type == HEADERS:
            pad = 0
            if f.flags & PADDED:
                pad = p[0]
                p = p[1:]
            if f.flags & PRIORITY_FLAG:
                p = p[5:]
            return p[:len(p) - pad]
        if f.type == PUSH_PROMISE:
            pad = 0
            if f.flags & PADDED:
                pad = p[0]
                p = p[1:]
            return p[4:len(p) - pad]
        return p

    def _continue_block(self, f):
        if f.type == HEADERS:
            self._block = (f, bytearray(self._header_block(f)))
            return None
        if self._block is None:
            return f  # a CONTINUATION out of place: hand it up as it is
        first, block = self._block
        block += f.payload
        if not f.flags & END_HEADERS:
            return None
        self._block = None
        first.headers = self._decode(bytes(block))
        return first

    def _decode(self, block):
        return [(n.decode(errors="replace"), v.decode(errors="replace"))
                for n, v in self.decoder.decode(block, raw=True)]

    def _note(self, f):
        self.frames_read.append(f)
        if len(self.frames_read) > 10000:
            del self.frames_read[:5000]
        if f.type == SETTINGS and not f.flags & ACK:
            s = f.settings()
            self.peer_settings.update(s)
            self.peer_settings_frames.append(s)
            self.send(settings_frame(ack=True))
        elif f.type == PING and not f.flags & ACK:
            self.send(ping(f.payload, ack=True))
        elif f.type == GOAWAY:
            self.goaway = (f.error_code, f.last_stream_id)
            for sid, o in self.outcomes.items():
                o.goaway = self.goaway
        elif f.stream_id in self.outcomes:
            o = self.outcomes[f.stream_id]
            if f.type == HEADERS:
                status = dict(f.headers).get(":status")
                if status is not None and status.startswith("1") and len(status) == 3:
                    o.informational.append(f.headers)
                elif o.status is None and status is not None:
                    o.status = int(status)
                    o.headers = f.headers
                else:
                    o.trailers = f.headers
                if f.flags & END_STREAM:
                    o.ended = True
            elif f.type == DATA:
                pad = f.payload[0] + 1 if f.flags & PADDED else 0
                o.body += f.payload[1:len(f.payload) - pad + 1] if pad else f.payload
                if self.auto_window and f.payload:
                    self.send(window_update(0, len(f.payload)) +
                              window_update(f.stream_id, len(f.payload)))
                if f.flags & END_STREAM:
                    o.ended = True
            elif f.type == RST_STREAM:
                o.reset = f.error_code
        if f.type == DATA and f.stream_id not in self.outcomes and self.auto_window and f.payload:
            self.send(window_update(0, len(f.payload)))

    def wait(self, stream_id, timeout=10.0):
        """Reads until the stream is done (ended, reset, connection gone) or the
        timeout; returns its Outcome."""
        o = self.outcomes.setdefault(stream_id, Outcome())
        deadline = time.monotonic() + timeout
        while not o.done:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self.read_frame(left) is None and (self.closed or time.monotonic() >= deadline):
                if self.closed:
                    o.closed = True
                break
            if self.goaway and stream_id > self.goaway[1]:
                break
        return o

    def wait_settings(self, timeout=5.0):
        """Reads until the peer's first SETTINGS frame came; returns them."""
        deadline = time.monotonic() + timeout
        while not self.peer_settings_frames and time.monotonic() < deadline:
            if self.read_frame(deadline - time.monotonic()) is None:
                break
        return dict(self.peer_settings)

    def drain_until_closed(self, timeout=5.0):
        """Reads (and drops) until the peer closes; True if it did in time."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.read_frame(deadline - time.monotonic())
        return self.closed


# --------------------------------------------------------------------------
# edge-case clients (each bounded in bytes and time)

def stalled_download(port, path, authority="test", stall_for=10.0, on_tick=None,
                     extra=()):
    """GETs `path` and never sends a WINDOW_UPDATE: the peer may send 64 KiB
    (the default windows) and must then wait. Reads whatever comes until the
    stream is reset or ended, the connection closes, or `stall_for` seconds
    pass; calls on_tick() about every 0.1 s. Returns the Outcome plus
    `.elapsed` (seconds) and `.received` (DATA bytes)."""
    with RawH2(port, auto_window=False) as c:
        sid = c.request("GET", path, authority, extra=extra)
        o = c.outcomes[sid]
        start = time.monotonic()
        while not o.done and time.monotonic() - start < stall_for:
            c.read_frame(0.1)
            if on_tick:
                on_tick()
            if c.goaway is not None and c.closed:
                break
        o.elapsed = time.monotonic() - start
        o.received = len(o.body)
        return o


class Burst:
    """What a flood did: frames written, whether the peer closed the
    connection (and its GOAWAY), what came back."""

    def __init__(self):
        self.sent = 0          # units (streams, frames) fully written
        self.bytes_sent = 0
        self.closed = False
        self.goaway = None
        self.responses = 0     # HEADERS with a :status received
        self.resets = 0        # RST_STREAM received
        self.elapsed = 0.0

    def __repr__(self):
        return (f"<Burst sent={self.sent} bytes={self.bytes_sent} closed={self.closed} "
                f"goaway={self.goaway} responses={self.responses} resets={self.resets} "
                f"elapsed={self.elapsed:.2f}s>")


def _finish_burst(c, b, start, read_for):
    deadline = time.monotonic() + read_for
    while not c.closed and time.monotonic() < deadline:
        c.read_frame(deadline - time.monotonic())
    for f in c.frames_read:
        if f.type == HEADERS and f.headers and dict(f.headers).get(":status"):
            b.responses += 1
        elif f.type == RST_STREAM:
            b.resets += 1
    b.closed = c.closed
    b.goaway = c.goaway
    b.elapsed = time.monotonic() - start
    return b


def rapid_reset(port, n=10000, path="/hello", authority="test", read_for=5.0, timeout=20.0):
    """CVE-2023-44487: n streams each opened (HEADERS, END_STREAM) and at once
    cancelled (RST_STREAM CANCEL), written as fast as the socket takes them.
    Then reads for up to read_for seconds (or until the peer closes)."""
    start = time.monotonic()
    b = Burst()
    block = encode_headers(request_headers("GET", path, authority))
    with RawH2(port, timeout=timeout) as c:
        batch = 500
        sid = 1
        while b.sent < n and not c.closed and time.monotonic() - start < timeout:
            k = min(batch, n - b.sent)
            buf = bytearray()
            for _ in range(k):
                buf += frame(HEADERS, END_HEADERS | END_STREAM, sid, block)
                buf += rst_stream(sid, CANCEL)
                sid += 2
            unit = len(buf) // k
            w = c.send(bytes(buf), timeout=max(0.1, timeout - (time.monotonic() - start)))
            b.bytes_sent += w
            b.sent += w // unit
            if w < len(buf):
                break
            # Read what came so far without waiting, so the peer is not
            # stopped by a full socket (this is a client that reads).
            while c.read_frame(0) is not None:
                pass
        return _finish_burst(c, b, start, read_for)


def continuation_flood(port, authority="test", empty=False, max_bytes=64 << 20, timeout=10.0,
                       read_for=3.0):
    """CVE-2024-27316 / CVE-2024-28182: HEADERS without END_HEADERS, then
    CONTINUATION frames without END_HEADERS for ever (each a new 1 KiB header
    field, or empty ones with empty=True) until the peer closes, max_bytes are
    written or the timeout passes."""
    start = time.monotonic()
    b = Burst()
    with RawH2(port, timeout=timeout) as c:
        sid = c.new_stream_id()
        c.outcomes[sid] = Outcome()
        first = encode_headers(request_headers("GET", "/hello", authority))
        c.send(frame(HEADERS, END_STREAM, sid, first))
        i = 0
        while b.bytes_sent < max_bytes and not c.closed and time.monotonic() - start < timeout:
            buf = bytearray()
            for _ in range(64):
                payload = b"" if empty else encode_headers([(f"x-flood-{i}", "a" * 1000)])
                buf += frame(CONTINUATION, 0, sid, payload)
                i += 1
            w = c.send(bytes(buf), timeout=max(0.1, timeout - (time.monotonic() - start)))
            b.bytes_sent += w
            b.sent = i if w == len(buf) else i - 64
            if w < len(buf):
                break
            while c.read_frame(0) is not None:
                pass
        return _finish_burst(c, b, start, read_for)


def control_flood(port, kind="ping", n=1_000_000, timeout=10.0, read_for=3.0):
    """SETTINGS or PING frames, each of which the peer must acknowledge, written
    without reading anything (a small receive buffer so the peer's acks back
    up at once), until the peer closes, n frames are written or the timeout
    passes."""
    start = time.monotonic()
    b = Burst()
    unit = ping(b"floodpin") if kind == "ping" else settings_frame({INITIAL_WINDOW_SIZE: 65535})
    with RawH2(port, rcvbuf=4096, timeout=timeout) as c:
        buf = unit * 1000
        while b.sent < n and not c.closed and time.monotonic() - start < timeout:
            w = c.send(buf, timeout=max(0.1, timeout - (time.monotonic() - start)))
            b.bytes_sent += w
            b.sent += w // len(unit)
            if w < len(buf):
                break
        # The peer closed (reads fail), or it stopped reading (sends block):
        # tell them apart by reading now.
        return _finish_burst(c, b, start, read_for)


def oversized_header_list(port, authority="test", total=70 * 1024, path="/hello"):
    """A request whose header list is `total` bytes of 1 KiB fields, split over
    HEADERS + CONTINUATION frames of at most 16 KiB; then a plain GET on the
    same connection. Returns (outcome of the big one, outcome of the next)."""
    with RawH2(port) as c:
        c.wait_settings(2)
        extra = [(f"x-big-{i}", "b" * 1000) for i in range(total // 1030 + 1)]
        block = encode_headers(request_headers("GET", path, authority, extra=extra))
        sid = c.new_stream_id()
        c.outcomes[sid] = Outcome()
        pieces = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        for k, piece in enumerate(pieces):
            last = k == len(pieces) - 1
            if k == 0:
                c.send(frame(HEADERS, END_STREAM | (END_HEADERS if last else 0), sid, piece))
            else:
                c.send(frame(CONTINUATION, END_HEADERS if last else 0, sid, piece))
        big = c.wait(sid, 10)
        if c.closed:
            return big, None
        sid2 = c.request("GET", path, authority)
        return big, c.wait(sid2, 10)


def invalid_request(port, headers, body=None, follow_path="/hello", authority="test"):
    """Sends `headers` as they are (no validation), with an optional body;
    then, unless the connection closed, a valid GET follow_path. Returns
    (outcome of the invalid one, outcome of the valid one or None)."""
    with RawH2(port) as c:
        sid = c.headers(headers, end_stream=body is None)
        if body is not None:
            c.data(sid, body, end_stream=True)
        bad = c.wait(sid, 10)
        if c.closed:
            return bad, None
        sid2 = c.request("GET", follow_path, authority)
        return bad, c.wait(sid2, 10)
