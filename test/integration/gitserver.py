"""Real git servers for the sync tests, on 127.0.0.1: `git daemon` (git://)
and `git http-backend` behind a small CGI server (http://, with optional
Basic authentication), plus a repository to push commits to."""
import base64
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import free_port  # noqa: F401 (also used by the tests through this module)

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": tempfile.gettempdir()}


def git(*args, cwd=None):
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True,
                          capture_output=True, text=True).stdout.strip()



class Repo:
    """A bare repository (what the servers serve) and a work tree that pushes to it."""

    def __init__(self, branch="main"):
        self.dir = tempfile.mkdtemp(prefix="sidecar-git-")
        self.base = os.path.join(self.dir, "srv")
        self.bare = os.path.join(self.base, "repo.git")
        self.work = os.path.join(self.dir, "work")
        os.makedirs(self.base)
        git("init", "--bare", "-q", "-b", branch, self.bare)
        git("init", "-q", "-b", branch, self.work)
        git("remote", "add", "origin", self.bare, cwd=self.work)
        self.branch = branch

    def commit(self, files, message="change", branch=None, amend=False, push=True, force=False):
        """Writes {path: text}, commits, pushes; returns the commit id."""
        for path, text in files.items():
            full = os.path.join(self.work, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "--allow-empty", *(["--amend"] if amend else []), "-m", message,
            cwd=self.work)
        if push:
            git("push", "-q", *(["--force"] if force else []), "origin",
                f"HEAD:refs/heads/{branch or self.branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def tag(self, name, annotated=True):
        if annotated:
            git("tag", "-a", name, "-m", name, cwd=self.work)
        else:
            git("tag", name, cwd=self.work)
        git("push", "-q", "origin", name, cwd=self.work)

    def delete_branch(self, name):
        git("push", "-q", "origin", f":refs/heads/{name}", cwd=self.work)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class GitDaemon:
    def __init__(self, repo):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={repo.base}",
             f"--port={self.port}", "--listen=127.0.0.1", repo.base],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=GIT_ENV)
        self.url = f"git://127.0.0.1:{self.port}/repo.git"
        deadline = 50
        while deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                import time
                time.sleep(0.05)
                deadline -= 1

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class GitHttp:
    """git http-backend (smart HTTP) run as CGI by a small threaded server."""

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
