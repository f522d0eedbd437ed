#!/usr/bin/python3
"""`sidecar webhook` for real: AdmissionReview v1 requests posted with curl over
TLS; the JSONPatch of each answer, applied with python3-jsonpatch to the
object, gives exactly what `sidecar inject` makes of it. /ready answers, bad
requests are refused, and a replaced certificate is served without a restart."""
import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import unittest
import uuid

import jsonpatch

import k8s_tools as kt
from harness import BIN, _PROCESSES, run_tests, wait_for

INPUTS = os.path.join(kt.HERE, "k8s", "inject")


def make_cert(directory, name, cn):
    cert, key = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", f"/CN={cn}",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key,
                    "-out", cert], check=True, capture_output=True)
    return cert, key


def served_cn(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s) as t:
            der = t.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem, text=True,
                         capture_output=True, check=True).stdout
    return out.strip().rsplit("=", 1)[-1].strip()


class WebhookTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sidecar-webhook-")
        cls.cert, cls.key = make_cert(cls.dir, "tls", "webhook-one")
        # The names cert-manager's Secret volume uses; replaced in place later.
        shutil.copy(cls.cert, os.path.join(cls.dir, "serving.crt"))
        shutil.copy(cls.key, os.path.join(cls.dir, "serving.key"))
        address = os.path.join(cls.dir, "address")
        cls.log = open(os.path.join(cls.dir, "webhook.log"), "wb")
        cls.proc = subprocess.Popen(
            [BIN, "webhook", "--listen", "127.0.0.1:0", "--address-path", address,
             "--cert", os.path.join(cls.dir, "serving.crt"),
             "--key", os.path.join(cls.dir, "serving.key"), "--config-map", "web"],
            stdout=cls.log, stderr=subprocess.STDOUT)
        _PROCESSES.append(cls.proc)
        cls.address = wait_for(lambda: os.path.exists(address) and open(address).read().strip(),
                               10, what="the webhook's address")
        cls.port = int(cls.address.rsplit(":", 1)[1])

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(timeout=10)
        cls.log.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def curl(self, path, body=None, cacert=None):
        args = ["curl", "-sS", "--cacert", cacert or self.cert, "-o", "-", "-w", "\n%{http_code}",
                f"https://127.0.0.1:{self.port}{path}"]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        p = subprocess.run(args, input=body, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        text, _, code = p.stdout.rpartition("\n")
        return int(code), text

    def review(self, obj):
        uid = str(uuid.uuid4())
        request = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": obj["kind"]},
                               "resource": {"group": "", "version": "v1", "resource": "pods"},
                               "namespace": "default", "operation": "CREATE", "object": obj,
                               "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
                               "dryRun": False}}
        code, text = self.curl("/inject", json.dumps(request))
        self.assertEqual(code, 200, text)
        answer = json.loads(text)
        self.assertEqual(answer["apiVersion"], "admission.k8s.io/v1")
        self.assertEqual(answer["kind"], "AdmissionReview")
        self.assertEqual(answer["response"]["uid"], uid)
        self.assertIs(answer["response"]["allowed"], True)
        return answer["response"]

    def test_the_patch_gives_what_inject_gives(self):
        objects = []
        for name in ("cronjob.yaml", "statefulset.yaml", "deployment-init.yaml", "list.yaml"):
            with open(os.path.join(INPUTS, name)) as f:
                for doc in kt.load_all(f.read()):
                    objects += doc["items"] if doc["kind"] == "List" else [doc]
        # A pod as the ReplicaSet controller creates it (what the API server sends).
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"generateName": "shop-5d4f8-", "namespace": "default",
                            "labels": {"app": "shop"}, "ownerReferences": [
                                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "shop-5d4f8",
                                 "uid": "0c6f", "controller": True, "blockOwnerDeletion": True}]},
               "spec": {"containers": [{"name": "shop", "image": "shop:1", "ports": [
                   {"containerPort": 8080, "protocol": "TCP"}], "resources": {}}],
                        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}}
        objects.append(pod)
        patched_kinds = 0
        for obj in objects:
            with self.subTest(kind=obj["kind"], name=obj["metadata"].get("name")):
                response = self.review(obj)
                p = subprocess.run([BIN, "inject", "-f", "-", "--config-map", "web"],
                                   input=json.dumps(obj), capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, p.stderr)
                expected = kt.load_all(p.stdout)[0]
                if "patch" not in response:
                    self.assertEqual(expected, obj)  # not a workload, or opted out
                    continue
                patched_kinds += 1
                self.assertEqual(response["patchType"], "JSONPatch")
                patch = json.loads(base64.b64decode(response["patch"]))
                self.assertEqual(jsonpatch.apply_patch(obj, patch), expected)
                # Injected again: nothing to do, no patch.
                self.assertNotIn("patch", self.review(expected))
        self.assertEqual(patched_kinds, 7)  # all but the ConfigMap and the opted-out Pod

    def test_ready_errors_and_opt_out(self):
        self.assertEqual(self.curl("/ready"), (200, "ok\n"))
        code, text = self.curl("/inject", "{not json")
        self.assertEqual(code, 400)
        self.assertIn("error", json.loads(text))
        self.assertEqual(self.curl("/inject")[0], 405)
        self.assertEqual(self.curl("/nothing")[0], 404)
        opted = {"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "x", "annotations": {"sidecar.dev/inject": "false"}},
                 "spec": {"containers": [{"name": "a", "image": "a"}]}}
        self.assertNotIn("patch", self.review(opted))
        broken = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "y"}, "spec": {}}
        response = self.review(broken)
        self.assertNotIn("patch", response)
        self.assertEqual(response["warnings"], ["sidecar not injected: spec: containers missing"])

    def test_zz_a_replaced_certificate_is_served_without_restart(self):
        self.assertEqual(served_cn(self.port), "webhook-one")
        cert, key = make_cert(self.dir, "two", "webhook-two")
        # Written as cert-manager's kubelet volume does it: new files renamed in.
        for src, dst in ((key, "serving.key"), (cert, "serving.crt")):
            shutil.copy(src, os.path.join(self.dir, dst + ".new"))
            os.replace(os.path.join(self.dir, dst + ".new"), os.path.join(self.dir, dst))
        wait_for(lambda: served_cn(self.port) == "webhook-two", 5, 0.1, "the new certificate")
        self.assertEqual(self.curl("/ready", cacert=cert), (200, "ok\n"))
        self.assertIsNone(self.proc.poll())


if __name__ == "__main__":
    if not shutil.which("openssl"):
        print("SKIP: openssl not found", file=sys.stderr)
        sys.exit(kt.SKIP)
    run_tests()
