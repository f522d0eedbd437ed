#!/usr/bin/python3
"""deploy/: every kustomize overlay and the Helm chart render, and what they
render is valid for Kubernetes (schemas, unknown fields, native sidecar
rules) and consistent with the sidecar's own config (sidecar validate, probe
and container ports, grace period against the drain timings). Negative
fixtures prove the checks can fail."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

import yaml

import k8s_tools as kt
import certs
from harness import BIN, run_tests

DEPLOY = os.path.join(kt.ROOT, "deploy")
OVERLAYS = sorted(os.listdir(os.path.join(DEPLOY, "kubernetes", "overlays")))
CHART = os.path.join(DEPLOY, "helm", "sidecar")
NEGATIVE = os.path.join(kt.HERE, "k8s", "negative")


def seconds(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(text))
    assert m, f"not a duration: {text}"
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def helm(*args, check=True):
    return kt.run(kt.tool("helm"), *args, check=check)


def helm_template(*args):
    return kt.load_all(helm("template", "demo", CHART, *args).stdout)


class ManifestsTest(unittest.TestCase):
    def check_config(self, objects, what):
        """The sidecar's ConfigMap against the pod that mounts it."""
        configs = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"
                   and "sidecar.yaml" in o.get("data", {})}
        workloads = [o for o in objects if o["kind"] in kt.POD_TEMPLATE_KINDS]
        self.assertTrue(workloads, what)
        for w in workloads:
            spec = kt.pod_spec(w)
            every = (spec.get("initContainers") or []) + spec["containers"]
            sidecar = next(c for c in every if c["name"] == "sidecar")
            volume = next(v for v in spec["volumes"] if v["name"] == "sidecar-config")
            cm = configs[volume["configMap"]["name"]]
            text = cm["data"]["sidecar.yaml"]
            config = yaml.safe_load(text)
            self.assertIs(config.get("watch"), True, f"{what}: watch: true")
            with tempfile.TemporaryDirectory() as d:
                # Certificates the pod mounts from a Secret: made here, at the
                # same paths under a temporary root, so validate reads real ones.
                for tls_dir in sorted(set(re.findall(r"(/etc/[\w.-]+)/tls\.(?:crt|key)", text))):
                    ca = certs.CA(os.path.join(d, "ca"))
                    crt, key = ca.issue("tls", dns=["localhost"], out_dir=d + tls_dir)
                    os.rename(crt, d + tls_dir + "/tls.crt")
                    os.rename(key, d + tls_dir + "/tls.key")
                    text = text.replace(tls_dir + "/tls.", d + tls_dir + "/tls.")
                path = os.path.join(d, "sidecar.yaml")
                with open(path, "w") as f:
                    f.write(text)
                p = subprocess.run([BIN, "validate", "-c", path], capture_output=True, text=True)
            if p.returncode != 0:
                self.fail(f"{what}: sidecar validate: {p.stdout}{p.stderr}")
            listeners = {l["name"]: int(l["address"].rsplit(":", 1)[1]) for l in config["listeners"]}
            ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
            self.assertEqual(ports["sidecar-http"], listeners["inbound"], what)
            self.assertEqual(ports["sidecar-status"], listeners["status"], what)
            status_routes = {r["match"].get("path") for l in config["listeners"]
                             if l["name"] == "status" for r in l["routes"]}
            self.assertEqual(status_routes, {"/ready", "/healthz", "/metrics"}, what)
            for probe, path in (("startupProbe", "/ready"), ("readinessProbe", "/ready"),
                                ("livenessProbe", "/healthz")):
                self.assertEqual(sidecar[probe]["httpGet"]["path"], path, what)
                self.assertEqual(sidecar[probe]["httpGet"]["port"], listeners["status"], what)
            # Kubernetes' SIGKILL must not cut the drain: the grace period
            # covers drain.delay + drain.timeout + app.stop_timeout.
            drain = config.get("drain", {})
            budget = (seconds(drain.get("delay", "0s")) + seconds(drain.get("timeout", "5s"))
                      + seconds(config.get("app", {}).get("stop_timeout", "10s")))
            grace = spec.get("terminationGracePeriodSeconds", 30)
            self.assertGreaterEqual(grace, budget, f"{what}: grace period {grace} < {budget}")
            env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in sidecar["env"]}
            self.assertEqual(env, {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace",
                                   "POD_IP": "status.podIP", "NODE_NAME": "spec.nodeName"}, what)
            sc = sidecar["securityContext"]
            self.assertEqual((sc["runAsNonRoot"], sc["readOnlyRootFilesystem"],
                              sc["allowPrivilegeEscalation"], sc["capabilities"]["drop"]),
                             (True, True, False, ["ALL"]), what)
            for key in ("requests", "limits"):
                self.assertIn("memory", sidecar["resources"][key], what)
            native = sidecar in (spec.get("initContainers") or [])
            self.assertEqual(sidecar.get("restartPolicy"), "Always" if native else None, what)
            annotations = (w["spec"]["template"]["metadata"] if w["kind"] != "Pod" else w["metadata"]
                           ).get("annotations", {})
            self.assertEqual(annotations.get("prometheus.io/port"), str(listeners["status"]), what)

    def check(self, objects, what):
        problems = kt.validate(objects)
        self.assertEqual(problems, [], what)

    def test_every_overlay_renders_valid_objects(self):
        for overlay in OVERLAYS:
            with self.subTest(overlay=overlay):
                objects = kt.kustomize(os.path.join(DEPLOY, "kubernetes", "overlays", overlay))
                self.check(objects, overlay)
                self.check_config(objects, overlay)
        base = kt.kustomize(os.path.join(DEPLOY, "kubernetes", "base"))
        self.check(base, "base")
        self.check_config(base, "base")
        classic = kt.kustomize(os.path.join(DEPLOY, "kubernetes", "overlays",
                                            "git-sync-nginx-classic"))
        spec = kt.pod_spec(next(o for o in classic if o["kind"] == "Deployment"))
        self.assertEqual([c["name"] for c in spec["containers"]], ["app", "sidecar"])

    def test_the_webhook_manifests_are_valid(self):
        objects = kt.kustomize(os.path.join(DEPLOY, "kubernetes", "webhook"))
        self.check(objects, "webhook")
        mwc = next(o for o in objects if o["kind"] == "MutatingWebhookConfiguration")
        hook = mwc["webhooks"][0]
        self.assertEqual(hook["failurePolicy"], "Ignore")
        self.assertEqual(hook["clientConfig"]["service"]["path"], "/inject")
        self.assertEqual(hook["namespaceSelector"]["matchLabels"], {"sidecar.dev/inject": "enabled"})
        deploy = next(o for o in objects if o["kind"] == "Deployment")
        c = kt.pod_spec(deploy)["containers"][0]
        self.assertEqual(c["command"], ["sidecar", "webhook"])
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/ready")

    def test_the_helm_chart_lints_and_renders_every_form(self):
        p = helm("lint", CHART, "--strict", "--kube-version", "1.31.0")
        self.assertIn("0 chart(s) failed", p.stdout)
        with open(os.path.join(CHART, "Chart.yaml")) as f:
            self.assertIn("kubeVersion", yaml.safe_load(f))
        sync = ('[{"name":"site","git":{"repo":"https://example.com/site.git","ref":"main"},'
                '"root":"/srv/site","period":"10s"}]')
        forms = {
            "native": [],
            "classic": ["--set", "mode=classic", "--kube-version", "1.27.0"],
            "features": ["--set", "metrics.serviceMonitor.enabled=true", "--set-json",
                         f"sidecar.sync={sync}", "--set-json",
                         'sharedVolumes=[{"name":"site","mountPath":"/srv/site"}]',
                         "--set", "app.stopTimeoutSeconds=30"],
        }
        for form, args in forms.items():
            with self.subTest(form=form):
                objects = helm_template(*args)
                self.check(objects, form)
                self.check_config(objects, form)
        spec = kt.pod_spec(next(o for o in helm_template(*forms["features"])
                                if o["kind"] == "Deployment"))
        self.assertEqual(spec["terminationGracePeriodSeconds"], 5 + 10 + 30 + 5)
        # The native form refuses clusters without native sidecars.
        p = helm("template", "demo", CHART, "--kube-version", "1.28.0", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("needs Kubernetes >= 1.29", p.stderr)

    def test_negative_fixtures_fail_the_checks(self):
        fixtures = sorted(f for f in os.listdir(NEGATIVE) if f.endswith(".yaml"))
        self.assertGreaterEqual(len(fixtures), 4)
        for name in fixtures:
            with self.subTest(fixture=name):
                with open(os.path.join(NEGATIVE, name)) as f:
                    text = f.read()
                expected = re.search(r"^# expect: (.+)$", text, re.M).group(1)
                problems = kt.validate(kt.load_all(text))
                self.assertTrue(problems, f"{name} passed the checks")
                self.assertTrue(any(expected in p for p in problems), f"{name}: {problems}")


if __name__ == "__main__":
    why = kt.tools_missing()
    if why:
        print(f"SKIP: {why}", file=sys.stderr)
        sys.exit(kt.SKIP)
    run_tests()
