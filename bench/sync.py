#!/usr/bin/python3
"""Sync costs, measured (docs/sync.md "Costs"):

1. memory: a 50 MiB repository (incompressible files, a few commits) served
   by git daemon; sidecar syncs it once, then idles. Reported: sidecar's
   resident memory without sync, with the sync module loaded and idle after
   the sync, its peak, and the peak resident memory of the largest git
   command (wait4's ru_maxrss, from /sync).
2. store: a 1 MiB tree with 30 commits of history (depth 1 against depth 0),
   and 100 force-pushed syncs of a 0.25 MiB tree (git_gc auto and always):
   the mirror's size and pack count.

   bench/sync.py [build/sidecar] [--only memory,store]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))

from gitserver import GitDaemon, Repo, git  # noqa: E402
from harness import Sidecar, wait_for  # noqa: E402


def mib(n):
    return n / (1 << 20)


def du(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def status_of(sc):
    return json.loads(sc.admin_get("/sync")[1])["syncs"][0]


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def memory():
    repo = Repo()
    try:
        # 50 MiB in 400 files of 128 KiB, over 4 commits.
        for c in range(4):
            repo.commit({f"d{c}/f{i}.bin": os.urandom(128 << 10) for i in range(100)},
                        push=False)
        repo.push()
        size = du(os.path.join(repo.work)) - du(os.path.join(repo.work, ".git"))
        daemon = GitDaemon(repo)
        root = tempfile.mkdtemp(prefix="sidecar-bench-sync-")
        try:
            base = Sidecar("workers: 1\nlisteners: []\n")
            time.sleep(0.5)
            idle = rss_kib(base.proc.pid)
            base.stop()
            sc = Sidecar(f"""workers: 1
sync:
  - name: big
    git: {{ repo: "{daemon.url}" }}
    root: {root}
    period: 1h
    timeout: 5m
""")
            t0 = time.monotonic()
            wait_for(lambda: status_of(sc)["successes"] >= 1, 300, 0.05, "the sync")
            took = time.monotonic() - t0
            time.sleep(1)
            st = status_of(sc)
            after = rss_kib(sc.proc.pid)
            peak = rss_kib(sc.proc.pid, "VmHWM")
            sc.stop()
            print(f"memory: {mib(size):.1f} MiB tree, first sync {took:.2f}s")
            print(f"  sidecar without sync:           {idle / 1024:.1f} MiB RSS")
            print(f"  sidecar with sync, idle after:  {after / 1024:.1f} MiB RSS "
                  f"(the module: +{(after - idle) / 1024:.1f} MiB), peak {peak / 1024:.1f} MiB")
            print(f"  largest git command, peak:      {mib(st['git_max_rss_bytes']):.1f} MiB RSS")
            print(f"  store: mirror {mib(du(os.path.join(root, '.git-mirror'))):.1f} MiB, "
                  f"tree {mib(du(os.path.join(root, '.revisions'))):.1f} MiB")
        finally:
            daemon.stop()
            shutil.rmtree(root, ignore_errors=True)
    finally:
        repo.cleanup()


def store():
    repo = Repo()
    try:
        # 1 MiB tree, 30 commits that each change a quarter of it.
        files = {f"f{i}.bin": os.urandom(32 << 10) for i in range(32)}
        repo.commit(files, push=False)
        for c in range(29):
            repo.commit({f"f{(c * 8 + i) % 32}.bin": os.urandom(32 << 10) for i in range(8)},
                        push=False)
        repo.push()
        daemon = GitDaemon(repo)
        roots = []
        try:
            for depth in (1, 0):
                root = tempfile.mkdtemp(prefix="sidecar-bench-sync-")
                roots.append(root)
                sc = Sidecar(f"""workers: 1
sync:
  - name: s
    git: {{ repo: "{daemon.url}", depth: {depth} }}
    root: {root}
    period: 1h
""")
                wait_for(lambda: status_of(sc)["successes"] >= 1, 60, 0.05, "the sync")
                sc.stop()
                print(f"store: 1 MiB tree, 30 commits, depth {depth}: mirror "
                      f"{mib(du(os.path.join(root, '.git-mirror'))):.2f} MiB")
        finally:
            daemon.stop()
            for r in roots:
                shutil.rmtree(r, ignore_errors=True)
    finally:
        repo.cleanup()

    for gc in ("auto", "always"):
        repo = Repo()
        daemon = GitDaemon(repo)
        root = tempfile.mkdtemp(prefix="sidecar-bench-sync-")
        try:
            repo.commit({"index.html": "v0\n"})
            sc = Sidecar(f"""workers: 1
sync:
  - name: s
    git: {{ repo: "{daemon.url}", git_gc: {gc} }}
    root: {root}
    period: 1h
    keep_old_for: 0s
""")
            wait_for(lambda: status_of(sc)["successes"] >= 1, 60, 0.05, "the first sync")
            for i in range(100):
                n = status_of(sc)["successes"]
                repo.commit({"index.html": f"v{i}\n",
                             **{f"f{j}.bin": os.urandom(16 << 10) for j in range(16)}},
                            amend=True, force=True)
                sc.admin_get("/sync", "POST")
                wait_for(lambda: status_of(sc)["successes"] > n, 60, 0.01, "a sync")
            time.sleep(0.5)
            sc.stop()
            mirror = os.path.join(root, ".git-mirror")
            packs = len([f for f in os.listdir(os.path.join(mirror, "objects", "pack"))
                         if f.endswith(".pack")])
            counts = dict(line.split(": ") for line in
                          git("count-objects", "-v", cwd=mirror).splitlines())
            print(f"store: 100 force-pushed syncs of a 0.25 MiB tree, git_gc {gc}: "
                  f"{packs} pack(s), {counts['count']} loose objects, mirror "
                  f"{mib(du(mirror)):.2f} MiB")
        finally:
            daemon.stop()
            shutil.rmtree(root, ignore_errors=True)
            repo.cleanup()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary", nargs="?", default=os.path.join(HERE, "..", "build", "sidecar"))
    parser.add_argument("--only", default="memory,store")
    args = parser.parse_args()
    os.environ["SIDECAR_BIN"] = os.path.abspath(args.binary)
    import harness
    harness.BIN = os.environ["SIDECAR_BIN"]
    only = args.only.split(",")
    if "memory" in only:
        memory()
    if "store" in only:
        store()


if __name__ == "__main__":
    main()
