// `sidecar inject`: adds the sidecar to Kubernetes workloads, as
// `istioctl kube-inject` and `linkerd inject` do, offline.
//
// Input: a YAML stream of any number of documents. Each Pod, Deployment,
// StatefulSet, DaemonSet, ReplicaSet, Job and CronJob (and each of those in
// the `items` of a List) gets, in its pod spec:
//   - the container `sidecar` (native form: first in `initContainers` with
//     `restartPolicy: Always`, Kubernetes >= 1.29; classic form: last in
//     `containers`), with its ports, Downward API env (POD_NAME, POD_NAMESPACE,
//     POD_IP, NODE_NAME), probes on the status port (startup and readiness:
//     /ready; liveness: /healthz), resources and a hardened securityContext;
//   - the volumes `sidecar-config` (the ConfigMap, mounted at /etc/sidecar)
//     and `sidecar-tmp` (an emptyDir at /tmp: the root filesystem is
//     read-only);
//   - in the pod template's annotations, `sidecar.dev/version` and
//     `sidecar.dev/config-hash` (a hash of every setting that shaped the
//     injected parts).
// Every other document passes through byte for byte; in a changed document
// the fields not touched keep their values and key order (comments and
// quoting style are not kept: see yaml_writer.h).
//
// Idempotent: a workload whose annotations already name this version and hash
// is left as it is; one injected with other settings has its injected parts
// replaced. Per workload, from the pod template's annotations (or the
// workload's own, the template's winning):
//   sidecar.dev/inject: "false"        leave it alone ("true" is the default)
//   sidecar.dev/config: NAME           the ConfigMap (default: Options::config_map)
//   sidecar.dev/inbound-port: "8000"   the sidecar's inbound listener port
//   sidecar.dev/resources: '{requests: {cpu: 50m}, limits: {memory: 64Mi}}'
//                                      the container's `resources`, replacing the default
//   sidecar.dev/mode: native|classic   the form, overriding Options::mode
//
// Errors name the document (1-based, counting non-empty documents) and the
// path: "doc 2: spec.template.spec: containers missing". Thread safety: pure
// functions.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <string_view>
#include <vector>

namespace sidecar::k8s {

enum class Mode { kNative, kClassic };

struct Options {
  std::string version;                 // the sidecar's version, for the annotation
  std::string image;                   // default "sidecar:<version>"
  std::string config_map = "sidecar";  // holds sidecar.yaml
  Mode mode = Mode::kNative;
  uint16_t inbound_port = 8000;  // the config's inbound listener (a containerPort)
  uint16_t status_port = 9902;   // the config's status listener: /ready, /healthz, /metrics
};

// The names the injected parts carry (also the contract of deploy/).
inline constexpr std::string_view kContainerName = "sidecar";
inline constexpr std::string_view kConfigVolume = "sidecar-config";
inline constexpr std::string_view kTmpVolume = "sidecar-tmp";
inline constexpr std::string_view kConfigMountPath = "/etc/sidecar";
inline constexpr std::string_view kVersionAnnotation = "sidecar.dev/version";
inline constexpr std::string_view kHashAnnotation = "sidecar.dev/config-hash";

struct InjectResult {
  std::string output;               // the stream, injected (empty when errors)
  std::vector<std::string> errors;  // "doc N: path: what"
  int injected = 0;                 // workloads changed
  int skipped = 0;                  // opted out or already injected
};

// Injects every workload of a YAML stream.
InjectResult inject_stream(std::string_view yaml, const Options& options);

// Injects one object in place (a workload, or a List of them). Returns true
// when it changed. Errors are appended as "<path>: what" with `prefix`
// ("doc 2: ") in front. Non-workload kinds are left alone.
bool inject_object(YAML::Node object, const Options& options, const std::string& prefix,
                   std::vector<std::string>& errors, int* skipped = nullptr);

}  // namespace sidecar::k8s
