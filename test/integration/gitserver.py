"""Real git servers for the sync tests, on 127.0.0.1: `git daemon` (git://),
`git http-backend` behind nginx and fcgiwrap (http:// and https://, with
optional Basic authentication or a required cookie), a small CGI server in
Python, tinyproxy (an HTTP CONNECT proxy), a "black hole" (accepts, never
answers, or forwards once told to), and repositories to push commits to."""
import base64
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import _PROCESSES, free_port, wait_for  # noqa: F401 (free_port: for the tests)

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": tempfile.gettempdir()}


def git(*args, cwd=None):
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True,
                          capture_output=True, text=True).stdout.strip()


def start(cmd, **kwargs):
    """A server process that no test run leaves behind."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    _PROCESSES.append(proc)
    return proc


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port, what):
    wait_for(lambda: port_open(port), 10, 0.02, what)


def processes_in(directory):
    """The pids of processes whose working directory is in `directory`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd == directory or cwd.startswith(directory + "/"):
            found.append(int(pid))
    return found


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Repo:
    """A bare repository (what the servers serve, under `base`) and a work
    tree that pushes to it. Several repositories can share a base."""

    def __init__(self, branch="main", name="repo.git", base=None):
        self.dir = tempfile.mkdtemp(prefix="sidecar-git-")
        self.base = base or os.path.join(self.dir, "srv")
        self.bare = os.path.join(self.base, name)
        self.work = os.path.join(self.dir, "work")
        os.makedirs(self.base, exist_ok=True)
        git("init", "--bare", "-q", "-b", branch, self.bare)
        # Partial clones (filter) need the server's consent.
        git("config", "uploadpack.allowFilter", "true", cwd=self.bare)
        git("init", "-q", "-b", branch, self.work)
        git("remote", "add", "origin", self.bare, cwd=self.work)
        self.branch = branch

    def commit(self, files, message="change", branch=None, amend=False, push=True, force=False):
        """Writes {path: text or bytes}, commits, pushes; returns the commit id."""
        for path, text in files.items():
            full = os.path.join(self.work, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb" if isinstance(text, bytes) else "w") as f:
                f.write(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "--allow-empty", *(["--amend"] if amend else []), "-m", message,
            cwd=self.work)
        if push:
            self.push(branch, force)
        return git("rev-parse", "HEAD", cwd=self.work)

    def push(self, branch=None, force=False):
        git("push", "-q", *(["--force"] if force else []), "origin",
            f"HEAD:refs/heads/{branch or self.branch}", cwd=self.work)

    def tag(self, name, annotated=True):
        if annotated:
            git("tag", "-a", name, "-m", name, cwd=self.work)
        else:
            git("tag", name, cwd=self.work)
        git("push", "-q", "origin", name, cwd=self.work)

    def add_submodule(self, url, path):
        git("-c", "protocol.file.allow=always", "submodule", "add", "-q", url, path, cwd=self.work)

    def delete_branch(self, name):
        git("push", "-q", "origin", f":refs/heads/{name}", cwd=self.work)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class GitDaemon:
    """`git daemon` serving every repository under the base of `repo`."""

    def __init__(self, repo, port=None):
        self.port = port or free_port()
        self.proc = start(
            ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={repo.base}",
             f"--port={self.port}", "--listen=127.0.0.1", repo.base], env=GIT_ENV)
        self.base_url = f"git://127.0.0.1:{self.port}"
        self.url = f"{self.base_url}/repo.git"
        wait_port(self.port, "git daemon")

    def stop(self):
        stop(self.proc)


class GitHttp:
    """git http-backend (smart HTTP) run as CGI by a small threaded Python
    server, with optional Basic authentication."""

    def __init__(self, repo, user=None, password=None):
        base = repo.base
        expected = (base64.b64encode(f"{user}:{password}".encode()).decode() if user else None)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def handle_cgi(self):
                if expected and self.headers.get("Authorization") != f"Basic {expected}":
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(length) if length else b""
                env = {**GIT_ENV, "GIT_PROJECT_ROOT": base, "GIT_HTTP_EXPORT_ALL": "1",
                       "PATH_INFO": path, "QUERY_STRING": query,
                       "REQUEST_METHOD": self.command,
                       "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                       "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
                       "REMOTE_USER": user or ""}
                if self.headers.get("Content-Encoding"):
                    env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
                if self.headers.get("Git-Protocol"):
                    env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
                out = subprocess.run(["git", "http-backend"], input=body, env=env,
                                     capture_output=True).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.split(b"\r\n"):
                    k, _, v = line.decode().partition(":")
                    if k.lower() == "status":
                        status = int(v.strip().split()[0])
                    elif k:
                        headers.append((k, v.strip()))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = handle_cgi

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/repo.git"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def self_signed_certificate(directory):
    """A certificate for 127.0.0.1 and its key; the certificate is its own CA."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


class NginxGit:
    """git http-backend behind nginx and fcgiwrap, serving every repository
    under the base of `repo`: Basic authentication (`user`, `password`), a
    required cookie (`cookie`: "name=value"), TLS (`tls`: then `ca` is the
    certificate to trust)."""

    def __init__(self, repo, user=None, password=None, cookie=None, tls=False):
        self.dir = tempfile.mkdtemp(prefix="sidecar-nginx-")
        os.makedirs(os.path.join(self.dir, "logs"))
        self.port = free_port()
        sock = os.path.join(self.dir, "fcgi.sock")
        self.fcgi = start(["fcgiwrap", "-c", "4", "-s", f"unix:{sock}"], env=GIT_ENV)
        wait_for(lambda: os.path.exists(sock), 10, 0.02, "fcgiwrap")
        checks = ""
        if user:
            with open(os.path.join(self.dir, "htpasswd"), "w") as f:
                f.write(f"{user}:{{PLAIN}}{password}\n")
            checks += f'auth_basic "git"; auth_basic_user_file {self.dir}/htpasswd;\n'
        if cookie:
            name, value = cookie.split("=", 1)
            checks += f'if ($cookie_{name} != "{value}") {{ return 401; }}\n'
        listen = f"127.0.0.1:{self.port}"
        tls_lines = ""
        self.ca = None
        if tls:
            cert, key = self_signed_certificate(self.dir)
            self.ca = cert
            listen += " ssl"
            tls_lines = f"ssl_certificate {cert}; ssl_certificate_key {key};"
        user_line = "user root;" if os.geteuid() == 0 else ""
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""{user_line}
daemon off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log {self.dir}/logs/access.log;
  client_body_temp_path {self.dir}/body;
  fastcgi_temp_path {self.dir}/fastcgi;
  proxy_temp_path {self.dir}/proxy;
  uwsgi_temp_path {self.dir}/uwsgi;
  scgi_temp_path {self.dir}/scgi;
  server {{
    listen {listen};
    {tls_lines}
    client_max_body_size 0;
    location / {{
      {checks}
      fastcgi_pass unix:{sock};
      fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
      fastcgi_param GIT_PROJECT_ROOT {repo.base};
      fastcgi_param GIT_HTTP_EXPORT_ALL "";
      fastcgi_param PATH_INFO $uri;
      fastcgi_param QUERY_STRING $args;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param REMOTE_USER $remote_user;
      fastcgi_param REMOTE_ADDR $remote_addr;
      fastcgi_param GIT_PROTOCOL $http_git_protocol;
      fastcgi_param HOME {tempfile.gettempdir()};
    }}
  }}
}}
""")
        self.nginx = start(["nginx", "-p", self.dir, "-c", conf])
        wait_port(self.port, "nginx")
        scheme = "https" if tls else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"
        self.url = f"{self.base_url}/repo.git"

    def requests(self):
        with open(os.path.join(self.dir, "logs", "access.log")) as f:
            return f.read()

    def stop(self):
        stop(self.nginx)
        stop(self.fcgi)
        shutil.rmtree(self.dir, ignore_errors=True)


class TinyProxy:
    """tinyproxy on 127.0.0.1: an HTTP proxy that tunnels https with CONNECT."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sidecar-tinyproxy-")
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "tinyproxy.log")
        conf = os.path.join(self.dir, "tinyproxy.conf")
        user = "User root\nGroup root\n" if os.geteuid() == 0 else ""
        with open(conf, "w") as f:
            f.write(f"""{user}Port {self.port}
Listen 127.0.0.1
Timeout 30
LogFile "{self.log_path}"
LogLevel Connect
PidFile "{self.dir}/tinyproxy.pid"
MaxClients 20
Allow 127.0.0.1
""")
        self.proc = start(["tinyproxy", "-d", "-c", conf])
        wait_port(self.port, "tinyproxy")
        self.url = f"http://127.0.0.1:{self.port}"

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class BlackHole:
    """A TCP port that accepts connections and never answers ("hole"), or
    forwards them to `target` once `answer()` is called: a git server that
    hangs, and comes back."""

    def __init__(self, target_port=None):
        self.target_port = target_port
        self.answering = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.accepted = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def answer(self):
        self.answering = True

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.answering and self.target_port:
                threading.Thread(target=self._forward, args=(conn,), daemon=True).start()
            else:
                self.held.append(conn)  # read nothing, say nothing

    def _forward(self, conn):
        try:
            up = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
        except OSError:
            conn.close()
            return
        conns = [conn, up]
        try:
            while True:
                ready, _, _ = select.select(conns, [], [], 30)
                if not ready:
                    return
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (up if s is conn else conn).sendall(data)
        except OSError:
            return
        finally:
            conn.close()
            up.close()

    def stop(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.sock.close()
        for c in self.held:
            c.close()


def wait_gone(proc, timeout):
    """Waits for `proc` to end; returns how long it took (seconds)."""
    start_time = time.monotonic()
    proc.wait(timeout=timeout)
    return time.monotonic() - start_time
