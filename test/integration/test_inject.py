#!/usr/bin/python3
"""`sidecar inject` over real-world manifests (k8s/inject/*.yaml): the output
equals the golden file (k8s/inject/golden/), is valid for Kubernetes
(schemas, unknown fields, native sidecar rules), injecting it again changes
nothing, and documents it does not touch pass byte for byte. Bad input exits
64 naming the document and the path.

SIDECAR_UPDATE_GOLDEN=1 rewrites the golden files (review the diff)."""
import os
import subprocess
import sys
import unittest

import yaml

import k8s_tools as kt
from harness import BIN, run_tests

INPUTS = os.path.join(kt.HERE, "k8s", "inject")
GOLDEN = os.path.join(INPUTS, "golden")
CASES = {  # input -> extra arguments
    "cronjob.yaml": [],
    "statefulset.yaml": [],
    "deployment-init.yaml": [],
    "list.yaml": [],
    "deployment-init.classic.yaml": ["--classic", "--config-map", "web", "--image",
                                     "registry.example.com/sidecar:0.1.0"],
}


def inject(path, *args, stdin=None):
    return subprocess.run([BIN, "inject", "-f", path, *args], input=stdin, capture_output=True,
                          text=True, timeout=30)


class InjectTest(unittest.TestCase):
    def test_golden_files(self):
        for case, args in CASES.items():
            with self.subTest(case=case):
                source = os.path.join(INPUTS, case.replace(".classic", ""))
                p = inject(source, *args)
                self.assertEqual(p.returncode, 0, p.stderr)
                golden = os.path.join(GOLDEN, case)
                if os.environ.get("SIDECAR_UPDATE_GOLDEN"):
                    with open(golden, "w") as f:
                        f.write(p.stdout)
                with open(golden) as f:
                    self.assertEqual(p.stdout, f.read(), f"{case} differs from {golden}")

                self.assertEqual(kt.validate(kt.load_all(p.stdout)), [], case)
                with open(source) as f:
                    before, after = kt.load_all(f.read()), kt.load_all(p.stdout)
                self.assertEqual(len(before), len(after), case)
                again = inject("-", *args, stdin=p.stdout)
                self.assertEqual(again.returncode, 0, again.stderr)
                self.assertEqual(again.stdout, p.stdout, f"{case}: not idempotent")

    def test_values_and_untouched_documents_are_kept(self):
        with open(os.path.join(INPUTS, "statefulset.yaml")) as f:
            text = f.read()
        out = inject(os.path.join(INPUTS, "statefulset.yaml")).stdout
        service = text.split("---\n")[0]
        self.assertTrue(out.startswith(service), "the Service document changed")  # comment kept
        before, after = kt.load_all(text), kt.load_all(out)
        sts, injected = before[1], after[1]
        self.assertEqual(list(injected), list(sts))  # key order
        self.assertEqual(injected["spec"]["volumeClaimTemplates"], sts["spec"]["volumeClaimTemplates"])
        spec = injected["spec"]["template"]["spec"]
        self.assertEqual(spec["containers"], sts["spec"]["template"]["spec"]["containers"])
        self.assertEqual(spec["terminationGracePeriodSeconds"], 60)
        sidecar = spec["initContainers"][0]
        self.assertEqual(sidecar["ports"][0]["containerPort"], 8001)
        self.assertEqual(sidecar["resources"], {"requests": {"cpu": "20m", "memory": "24Mi"},
                                                "limits": {"memory": "96Mi"}})

        out = inject(os.path.join(INPUTS, "deployment-init.yaml")).stdout
        spec = kt.load_all(out)[0]["spec"]["template"]["spec"]
        self.assertEqual([c["name"] for c in spec["initContainers"]],
                         ["sidecar", "migrate", "wait-for-cache"])
        self.assertEqual(spec["initContainers"][2]["command"][2],
                         "until nc -z cache 6379; do\n  echo waiting for cache\n  sleep 1\ndone\n")
        self.assertEqual(spec["containers"][0]["env"][0], {"name": "DEBUG", "value": "false"})
        self.assertEqual(spec["volumes"][1]["configMap"]["name"], "shop-sidecar")
        self.assertIn({"name": "logs", "mountPath": "/var/log/shop"},
                      spec["initContainers"][0]["volumeMounts"])

    def test_list_items_and_opt_out(self):
        items = kt.load_all(inject(os.path.join(INPUTS, "list.yaml")).stdout)[0]["items"]
        with open(os.path.join(INPUTS, "list.yaml")) as f:
            source = kt.load_all(f.read())[0]["items"]
        self.assertEqual(items[0], source[0])  # the ConfigMap
        self.assertEqual(items[4], source[4])  # the Pod that opted out
        self.assertEqual(kt.pod_spec(items[1])["initContainers"][0]["name"], "sidecar")
        self.assertEqual([c["name"] for c in kt.pod_spec(items[2])["containers"]],
                         ["legacy", "sidecar"])  # sidecar.dev/mode: classic
        self.assertEqual(kt.pod_spec(items[3])["initContainers"][0]["restartPolicy"], "Always")

        only_opted_out = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  annotations:\n" \
                         "    sidecar.dev/inject: \"false\"\nspec:\n  containers: [{name: a}]\n"
        p = inject("-", stdin=only_opted_out)
        self.assertEqual((p.returncode, p.stdout), (0, only_opted_out))

    def test_bad_input_exits_64_naming_document_and_path(self):
        bad = ("kind: Service\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"
               "spec:\n  template:\n    spec: {}\n")
        p = inject("-", stdin=bad)
        self.assertEqual(p.returncode, 64)
        self.assertEqual(p.stdout, "")
        self.assertIn("stdin: doc 2: spec.template.spec: containers missing", p.stderr)
        p = inject("-", stdin="kind: Pod\nspec: {containers: [a, b\n")
        self.assertEqual(p.returncode, 64)
        self.assertIn("doc 1: line ", p.stderr)
        p = inject("/nonexistent.yaml")
        self.assertEqual(p.returncode, 64)
        p = inject("-", "--native", "--classic", stdin="")
        self.assertEqual(p.returncode, 64)
        self.assertIn("excludes", p.stderr)


if __name__ == "__main__":
    why = kt.tools_missing()
    if why:
        print(f"SKIP: {why}", file=sys.stderr)
        sys.exit(kt.SKIP)
    run_tests()
