"""A scripted HTTP/1.1 upstream: raw bytes on 127.0.0.1, for answers the
test upstream (upstream.py) never gives: an unsolicited 100 Continue,
hop-by-hop response fields, response trailers, and a record of the exact
request line, fields and trailers that arrived.

    up = ScriptedUpstream(handler)   # handler(request, sock) writes the answer
    up.requests                      # every Request seen, in order

A handler reads the body with request.read_body() (Content-Length or
chunked; chunked trailers land in request.trailers) when it wants to, so it
can answer before the body (100 Continue) or after it.
"""
import socket
import threading


class Request:
    def __init__(self, conn, head, rest):
        self.conn = conn
        self.head = head
        lines = head.decode("latin-1").split("\r\n")
        self.request_line = lines[0]
        self.method, self.target, self.version = (lines[0].split(" ") + ["", ""])[:3]
        self.headers = []
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                self.headers.append((k.strip(), v.strip()))
        self._buf = rest
        self.body = b""
        self.trailers = []
        self.raw_body = b""
        self.body_read = False
        self.complete = False  # the whole body (and trailers) arrived

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def names(self):
        return [k.lower() for k, _ in self.headers]

    def _more(self):
        chunk = self.conn.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        self._buf += chunk
        self.raw_body += chunk

    def _line(self):
        while b"\r\n" not in self._buf:
            self._more()
        line, _, self._buf = self._buf.partition(b"\r\n")
        return line

    def read_body(self):
        if self.body_read:
            return self.body
        self.body_read = True
        self.raw_body = self._buf
        if (self.header("transfer-encoding") or "").lower() == "chunked":
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while True:
                        line = self._line()
                        if not line:
                            break
                        k, _, v = line.decode("latin-1").partition(":")
                        self.trailers.append((k.strip(), v.strip()))
                    break
                while len(self._buf) < size + 2:
                    self._more()
                self.body += self._buf[:size]
                self._buf = self._buf[size + 2:]
        else:
            n = int(self.header("content-length") or "0")
            while len(self._buf) < n:
                self._more()
            self.body, self._buf = self._buf[:n], self._buf[n:]
        self.complete = True
        return self.body

    def leftover(self):
        return self._buf


class ScriptedUpstream:
    def __init__(self, handler):
        self.handler = handler
        self.requests = []
        self.connections = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(10)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, rest = buf.partition(b"\r\n\r\n")
                req = Request(conn, head, rest)
                self.requests.append(req)
                keep = self.handler(req, conn)
                req.read_body()
                buf = req.leftover()
                if keep is False:
                    return
        except (OSError, ValueError):
            return
        finally:
            conn.close()

    def stop(self):
        self._stop = True
        self.sock.close()
