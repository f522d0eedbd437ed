// Validates Kubernetes objects against Kubernetes' OpenAPI schemas (npm
// kubernetes-models, Kubernetes 1.33; cert-manager and Prometheus Operator
// models for their CRDs). Reads a JSON array of objects on stdin; prints one
// line per problem ("INDEX KIND/NAME: path: message") and exits 1 if any.
// Unknown kinds are problems too: nothing passes unchecked.
//   node validate.mjs < objects.json     (packages from $SIDECAR_TOOLS/node_modules)
import { readFileSync } from "node:fs";
import path from "node:path";

const tools = process.env.SIDECAR_TOOLS || "/opt/sidecar-tools";
// The packages export ESM only: import their index files by path.
const resolve = (spec) => path.join(tools, "node_modules", spec, "index.js");

// apiVersion -> module: "apps/v1" -> kubernetes-models/apps/v1, "v1" -> kubernetes-models/v1
function moduleFor(apiVersion) {
  if (apiVersion.startsWith("cert-manager.io/")) {
    return "@kubernetes-models/cert-manager/" + apiVersion;
  }
  if (apiVersion.startsWith("monitoring.coreos.com/")) {
    return "@kubernetes-models/prometheus-operator/" + apiVersion;
  }
  return "kubernetes-models/" + apiVersion;
}

const objects = JSON.parse(readFileSync(0, "utf8"));
let problems = 0;
for (const [i, obj] of objects.entries()) {
  const where = `${i} ${obj?.kind}/${obj?.metadata?.name ?? "?"}`;
  if (!obj || typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
    console.log(`${where}: apiVersion and kind are required`);
    problems++;
    continue;
  }
  let Model;
  try {
    const mod = await import(resolve(moduleFor(obj.apiVersion)));
    Model = mod[obj.kind];
  } catch (e) {
    Model = undefined;
  }
  if (!Model) {
    console.log(`${where}: no schema for ${obj.apiVersion} ${obj.kind}`);
    problems++;
    continue;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    const errors = e.errors ?? [{ instancePath: "", message: e.message }];
    for (const err of errors) {
      const extra = err.params ? " " + JSON.stringify(err.params) : "";
      console.log(`${where}: ${err.instancePath || "/"}: ${err.message ?? err.keyword}${extra}`);
      problems++;
    }
  }
}
process.exit(problems ? 1 : 0);
