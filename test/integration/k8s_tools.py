"""Offline checks of Kubernetes objects for the deploy/ and inject tests:
Kubernetes' schemas (npm kubernetes-models, via k8s/validate.mjs), kubectl's
typed decoding (unknown fields are dropped by it, so anything missing from its
output was unknown), and the native sidecar's rules."""
import json
import os
import shutil
import subprocess

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
TOOLS = os.environ.get("SIDECAR_TOOLS", "/opt/sidecar-tools")
SKIP = 77  # ctest's SKIP_RETURN_CODE for the integration tests


def tool(name):
    """scripts/install-deps.sh's copy first, then PATH."""
    path = os.path.join(TOOLS, "bin", name)
    return path if os.access(path, os.X_OK) else shutil.which(name)


def run(*cmd, input=None, check=True):
    p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr}")
    return p


def load_all(text):
    return [d for d in yaml.safe_load_all(text) if d is not None]


def kustomize(path):
    return load_all(run(tool("kubectl"), "kustomize", path).stdout)


POD_TEMPLATE_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job",
                      "CronJob"}
PROBE_ENV = "SIDECAR_SCHEMA_PROBE"


def pod_spec(obj):
    kind = obj["kind"]
    if kind == "Pod":
        return obj["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def _decoded(obj):
    """The object as kubectl's typed structs see it, or None for kinds it
    cannot decode this way."""
    kubectl = tool("kubectl")
    if obj.get("kind") in POD_TEMPLATE_KINDS:
        out = run(kubectl, "set", "env", "--local", "-f", "-", "-o", "json", f"{PROBE_ENV}=1",
                  input=json.dumps(obj), check=False)
        if out.returncode != 0:
            return out.stderr
        decoded = json.loads(out.stdout)
        for key in ("containers", "initContainers"):
            for c in pod_spec(decoded).get(key) or []:
                c["env"] = [e for e in c.get("env", []) if e["name"] != PROBE_ENV]
                if not c["env"]:
                    del c["env"]
        return decoded
    if obj.get("kind") == "Service" and obj.get("spec", {}).get("selector"):
        selector = ",".join(f"{k}={v}" for k, v in obj["spec"]["selector"].items())
        out = run(kubectl, "set", "selector", "--local", "-f", "-", "-o", "json", selector,
                  input=json.dumps(obj), check=False)
        return json.loads(out.stdout) if out.returncode == 0 else out.stderr
    return None


def _missing(a, b, path):
    """Paths of `a` that `b` does not have (with the same value)."""
    if isinstance(a, dict):
        if not isinstance(b, dict):
            return [path]
        out = []
        for k, v in a.items():
            if k not in b:
                if v not in ({}, [], None, False, 0, ""):  # omitempty: a zero value is no value
                    out.append(f"{path}.{k}")
            else:
                out += _missing(v, b[k], f"{path}.{k}")
        return out
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return [path]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += _missing(x, y, f"{path}[{i}]")
        return out
    return [] if a == b or (a is None and b in ({}, [], None)) else [f"{path} ({a!r} != {b!r})"]


def sidecar_rules(obj):
    """The native sidecar's restartPolicy: only on init containers, and only Always."""
    problems = []
    if obj.get("kind") not in POD_TEMPLATE_KINDS:
        return problems
    spec = pod_spec(obj)
    for c in spec.get("containers") or []:
        if "restartPolicy" in c:
            problems.append(f"containers/{c.get('name')}: restartPolicy is for init containers only")
    for c in spec.get("initContainers") or []:
        if c.get("restartPolicy", "Always") != "Always":
            problems.append(f"initContainers/{c.get('name')}: restartPolicy must be Always")
    return problems


def validate(objects):
    """Every problem found in a list of objects (empty when all are valid)."""
    problems = []
    # A v1 List has no schema of its own: its items are checked.
    objects = [item for o in objects
               for item in (o.get("items", []) if o.get("kind") == "List" else [o])]
    out = run("node", os.path.join(HERE, "k8s", "validate.mjs"), input=json.dumps(objects),
              check=False)
    problems += [line for line in out.stdout.splitlines() if line]
    if out.returncode not in (0, 1) or (out.returncode == 1 and not problems):
        problems.append(f"validate.mjs failed: {out.stderr}")
    for i, obj in enumerate(objects):
        name = f"{i} {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        decoded = _decoded(obj)
        if isinstance(decoded, str):
            problems.append(f"{name}: kubectl cannot decode it: {decoded.strip()}")
        elif decoded is not None:
            problems += [f"{name}: unknown field {p}" for p in _missing(obj, decoded, "")]
        problems += [f"{name}: {p}" for p in sidecar_rules(obj)]
    return problems


def tools_missing():
    """Why the offline checks cannot run here, or None."""
    for name in ("kubectl", "helm"):
        if not tool(name):
            return f"{name} not found (scripts/install-deps.sh installs it in {TOOLS}/bin)"
    if not shutil.which("node"):
        return "node not found"
    if not os.path.isdir(os.path.join(TOOLS, "node_modules", "kubernetes-models")):
        return f"kubernetes-models not in {TOOLS} (scripts/install-deps.sh)"
    return None
