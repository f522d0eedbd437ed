#!/usr/bin/python3
"""deploy/Dockerfile built for real (buildah bud --isolation chroot, vfs
storage, from a Debian rootfs made with mmdebstrap, all cached under the
build directory), then the page refresher of deploy/kubernetes (overlay
git-sync-nginx-classic) run as a pod with `podman kube play --network none`:
nginx serves what the sidecar syncs from a git daemon in the pod, and a new
commit shows up in nginx's answer. Skipped, with the reason, where the tools
are missing or the kernel refuses containers (exit 77)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import yaml

import k8s_tools as kt
from gitserver import Repo
from harness import BIN, run_tests, wait_for

BUILD = os.path.dirname(os.path.abspath(BIN))
CACHE = os.path.join(BUILD, "containers")
STORE = ["--root", os.path.join(CACHE, "storage"), "--runroot", os.path.join(CACHE, "run"),
         "--storage-driver", "vfs"]
BASE = "localhost/sidecar-debian:bookworm"
WEB = "localhost/sidecar-test-web:bookworm"
IMAGE = "localhost/sidecar:test"
# The sandbox here may not raise rlimits (no CAP_SYS_RESOURCE): podman's
# defaults for a root container raise them, so ask for modest ones.
CONTAINERS_CONF = os.path.join(CACHE, "containers.conf")


def buildah(*args, check=True, timeout=900):
    return subprocess.run(["buildah", *STORE, *args], capture_output=True, text=True,
                          timeout=timeout, check=check)


def podman(*args, check=True, timeout=300):
    env = {**os.environ, "CONTAINERS_CONF": CONTAINERS_CONF}
    p = subprocess.run(["podman", *STORE, *args], capture_output=True, text=True,
                       timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {p.returncode}\n{p.stdout}{p.stderr}")
    return p


def image_exists(name):
    return buildah("inspect", "--type", "image", name, check=False).returncode == 0


def why_not():
    for tool in ("buildah", "podman", "mmdebstrap", "runc"):
        if not shutil.which(tool):
            return f"{tool} not found (scripts/install-deps.sh installs it)"
    os.makedirs(CACHE, exist_ok=True)
    with open(CONTAINERS_CONF, "w") as f:
        f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
                'netns = "none"\n[engine]\nruntime = "runc"\n')
    p = subprocess.run(["unshare", "--mount", "--pid", "--fork", "true"], capture_output=True)
    if p.returncode != 0:
        return f"the kernel refuses namespaces here: {p.stderr.decode().strip()}"
    return None


def ensure_base():
    """The Debian 12 rootfs (mmdebstrap), imported once; later runs reuse it."""
    if image_exists(BASE):
        return
    rootfs = os.path.join(CACHE, "rootfs.tar")
    if not os.path.exists(rootfs):
        sources = "/etc/apt/sources.list.d/debian.sources"
        args = [sources] if os.path.exists(sources) else []
        subprocess.run(["mmdebstrap", "--variant=minbase", "--quiet", "bookworm",
                        rootfs + ".tmp", *args], check=True, timeout=900)
        os.replace(rootfs + ".tmp", rootfs)
    c = buildah("from", "scratch").stdout.strip()
    buildah("add", c, rootfs, "/")
    buildah("config", "--cmd", "/bin/bash", c)
    buildah("commit", "--rm", c, BASE)


def bud(*args):
    start = time.monotonic()
    p = buildah("bud", "--isolation", "chroot", "--network", "host", "--layers", *args,
                check=False)
    if p.returncode != 0:
        raise AssertionError(f"buildah bud failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return time.monotonic() - start


class ImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        start = time.monotonic()
        ensure_base()
        cls.base_seconds = time.monotonic() - start
        cls.context = tempfile.mkdtemp(prefix="sidecar-image-")
        os.makedirs(os.path.join(cls.context, "build"))
        for name in os.listdir(BUILD):
            if name == "sidecar" or (name.startswith("libsidecar-") and name.endswith(".so")):
                shutil.copy(os.path.join(BUILD, name), os.path.join(cls.context, "build", name))
        revision = subprocess.run(["git", "-C", kt.ROOT, "rev-parse", "--short", "HEAD"],
                                  capture_output=True, text=True).stdout.strip() or "unknown"
        cls.build_seconds = bud("-f", os.path.join(kt.ROOT, "deploy", "Dockerfile"),
                                "--build-arg", f"DEBIAN={BASE}", "--build-arg", "BINARIES=prebuilt",
                                "--build-arg", f"REVISION={revision}", "-t", IMAGE, cls.context)
        print(f"\nimage: base {cls.base_seconds:.1f}s, buildah bud {cls.build_seconds:.1f}s",
              file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.context, ignore_errors=True)
        # Dangling layers of earlier builds would fill the disk (vfs copies them whole).
        buildah("rmi", "--prune", check=False)

    def test_image_metadata_and_size(self):
        info = json.loads(buildah("inspect", "--type", "image", IMAGE).stdout)
        config = info["OCIv1"]["config"]
        self.assertEqual(config["User"], "65532:65532")
        self.assertEqual(config["Entrypoint"], ["sidecar", "run"])
        labels = config["Labels"]
        for key in ("version", "source", "licenses", "revision"):
            self.assertIn(f"org.opencontainers.image.{key}", labels)
        self.assertEqual(labels["org.opencontainers.image.version"], "0.1.0")
        size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
        print(f"image size: {size / 1e6:.1f} MB", file=sys.stderr)
        # 270 MB since the sync module runs the git command: git and what
        # Debian's git depends on (perl: 47 MB) and openssh-client.
        self.assertLess(size, 300e6)
        out = podman("run", "--rm", "--network", "none", "--entrypoint", "sidecar", IMAGE,
                     "version").stdout
        self.assertTrue(out.startswith("sidecar 0.1.0"), out)

    def test_page_refresher_pod(self):
        bud("-f", os.path.join(kt.HERE, "k8s", "web.Containerfile"), "--build-arg",
            f"DEBIAN={BASE}", "-t", WEB, os.path.join(kt.HERE, "k8s"))
        repo = Repo()
        self.addCleanup(repo.cleanup)
        repo.commit({"index.html": "<h1>v1</h1>\n"})
        os.chmod(repo.dir, 0o755)
        kube = self.pod_yaml(repo)
        podman("kube", "down", kube, check=False)  # a pod an interrupted run left
        self.addCleanup(lambda: podman("kube", "down", kube, check=False))
        podman("kube", "play", "--network", "none", kube)
        pod = podman("pod", "ps", "--format", "{{.Name}}", "--filter", "name=app-pod").stdout.split()[0]
        infra = podman("pod", "inspect", "--format", "{{.InfraContainerID}}", pod).stdout.strip()
        pid = podman("inspect", "--format", "{{.State.Pid}}", infra).stdout.strip()

        def get(port):
            p = subprocess.run(["nsenter", "-t", pid, "-n", "curl", "-sS", "-m", "2",
                                f"http://127.0.0.1:{port}/"], capture_output=True, text=True)
            return p.stdout

        try:
            wait_for(lambda: get(8000) == "<h1>v1</h1>\n", 60, 0.2, "v1 through the sidecar")
        except TimeoutError:
            logs = podman("pod", "logs", pod, check=False)
            raise AssertionError(f"the pod never served v1:\n{logs.stdout[-4000:]}{logs.stderr}")
        repo.commit({"index.html": "<h1>v2</h1>\n"})
        wait_for(lambda: get(8080) == "<h1>v2</h1>\n", 20, 0.2, "nginx serving the new commit")
        self.assertEqual(get(8000), "<h1>v2</h1>\n")
        self.assertIn("sidecar_sync_total", subprocess.run(
            ["nsenter", "-t", pid, "-n", "curl", "-sS", "http://127.0.0.1:9902/metrics"],
            capture_output=True, text=True).stdout)

    def pod_yaml(self, repo):
        """The overlay as shipped, with this machine's images, the repository
        served by a git daemon container in the pod, and a short period."""
        objects = kt.kustomize(os.path.join(kt.ROOT, "deploy", "kubernetes", "overlays",
                                            "git-sync-nginx-classic"))
        out = []
        for obj in objects:
            if obj["kind"] == "ConfigMap" and "sidecar.yaml" in obj["data"]:
                obj["data"]["sidecar.yaml"] = (
                    obj["data"]["sidecar.yaml"]
                    .replace("https://github.com/example/site.git", "git://127.0.0.1:9418/repo.git")
                    .replace("period: 10s", "period: 500ms"))
            if obj["kind"] == "Deployment":
                obj["spec"]["replicas"] = 1
                spec = kt.pod_spec(obj)
                for c in spec["containers"]:
                    c["image"] = IMAGE if c["name"] == "sidecar" else WEB
                    # What podman 4.3 cannot take with --network none, or would
                    # turn into health checks run with a curl the images lack.
                    for key in ("resources", "ports", "startupProbe", "readinessProbe",
                                "livenessProbe"):
                        c.pop(key, None)
                    # podman resolves metadata.name only; the rest as values.
                    for e in c.get("env", []):
                        path = e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
                        if path and path != "metadata.name":
                            e.pop("valueFrom")
                            e["value"] = {"metadata.namespace": "default",
                                          "status.podIP": "127.0.0.1"}.get(path, "localhost")
                spec["containers"].append({
                    "name": "gitd", "image": WEB,
                    "command": ["git", "daemon", "--reuseaddr", "--export-all",
                                "--base-path=/repos", "--listen=127.0.0.1", "--port=9418", "/repos"],
                    "volumeMounts": [{"name": "repos", "mountPath": "/repos", "readOnly": True}]})
                spec["volumes"].append({"name": "repos", "hostPath": {"path": repo.base,
                                                                      "type": "Directory"}})
                # podman makes an emptyDir root's 0755 (Kubernetes: 0777): the
                # shared folder is a world-writable host directory instead.
                site = os.path.join(self.context, "site")
                os.makedirs(site, exist_ok=True)
                os.chmod(site, 0o777)
                for v in spec["volumes"]:
                    if v["name"] == "site":
                        v.pop("emptyDir")
                        v["hostPath"] = {"path": site, "type": "Directory"}
            if obj["kind"] in ("ConfigMap", "Deployment"):
                out.append(obj)
        path = os.path.join(self.context, "pod.yaml")
        with open(path, "w") as f:
            yaml.safe_dump_all(out, f)
        return path


if __name__ == "__main__":
    # A sanitizer build's binaries need the sanitizer runtimes, which the
    # image does not carry (and the plain build already proves the image).
    why = ("the binary is a sanitizer build" if os.environ.get("SIDECAR_SANITIZE") else None) \
        or why_not() or kt.tools_missing()
    if why:
        print(f"SKIP: {why}", file=sys.stderr)
        sys.exit(kt.SKIP)
    run_tests()
