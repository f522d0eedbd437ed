#include "k8s/inject.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <map>
#include <optional>

#include "k8s/yaml_writer.h"

namespace sidecar::k8s {
namespace {

constexpr std::string_view kInjectAnnotation = "sidecar.dev/inject";
constexpr std::string_view kConfigAnnotation = "sidecar.dev/config";
constexpr std::string_view kPortAnnotation = "sidecar.dev/inbound-port";
constexpr std::string_view kResourcesAnnotation = "sidecar.dev/resources";
constexpr std::string_view kModeAnnotation = "sidecar.dev/mode";
constexpr std::string_view kMountsAnnotation = "sidecar.dev/volume-mounts";

// Sized from bench/ (README "Performance"): idle RSS 5.9 MiB, peak 8.7-10 MiB
// at saturation, +8 MiB when the sync module is loaded; 1.5-3.9 CPU seconds
// per 100k requests, so 50m is about 1,300-3,400 requests/s. The CPU limit
// also bounds `workers: auto` (it follows the cgroup quota).
constexpr std::string_view kDefaultResources =
    "{requests: {cpu: 50m, memory: 32Mi}, limits: {cpu: '1', memory: 128Mi}}";

// A map field without adding it (yaml-cpp's non-const operator[] adds keys).
YAML::Node field(const YAML::Node& map, std::string_view key) {
  if (map.IsMap()) {
    for (const auto& kv : map) {
      if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string scalar_or_empty(const YAML::Node& node) {
  return node.IsDefined() && node.IsScalar() ? node.Scalar() : std::string();
}

// The map at map[key], created (at the end of the map) when absent or null.
YAML::Node ensure_map(YAML::Node map, const std::string& key) {
  YAML::Node value = field(map, key);
  if (value.IsDefined() && value.IsMap()) return value;
  YAML::Node created(YAML::NodeType::Map);
  map[key] = created;
  return created;
}

std::string fnv1a_hex(std::string_view data) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

bool valid_dns_subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  return alnum(s.front()) && alnum(s.back());
}

std::optional<uint16_t> parse_port(std::string_view s) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value == 0 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(value);
}

struct Mount {
  std::string volume;
  std::string path;
  bool read_only = false;
};

// What one workload gets: the options with its annotations applied.
struct Settings {
  std::string config_map;
  Mode mode;
  uint16_t inbound_port;
  YAML::Node resources;
  std::vector<Mount> mounts;
  std::string hash;
};

struct PodTemplate {
  YAML::Node metadata;  // may be undefined (a template without metadata)
  YAML::Node spec;
  std::string meta_path;  // "spec.template.metadata"
  std::string spec_path;  // "spec.template.spec"
};

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

// Finds the pod template of a workload kind; false for other kinds.
bool find_template(const YAML::Node& object, const std::string& kind, PodTemplate& out,
                   const std::string& prefix, std::vector<std::string>& errors) {
  if (kind == "Pod") {
    out.metadata = field(object, "metadata");
    out.spec = field(object, "spec");
    out.meta_path = "metadata";
    out.spec_path = "spec";
  } else {
    const bool cron = kind == "CronJob";
    if (!cron && kind != "Deployment" && kind != "StatefulSet" && kind != "DaemonSet" &&
        kind != "ReplicaSet" && kind != "Job" && kind != "ReplicationController") {
      return false;
    }
    const std::string path = cron ? "spec.jobTemplate.spec" : "spec";
    // Bound once: assigning a YAML::Node writes through to the tree.
    const YAML::Node spec =
        cron ? field(field(field(object, "spec"), "jobTemplate"), "spec") : field(object, "spec");
    if (!spec.IsMap()) {
      errors.push_back(fmt::format("{}{}: missing", prefix, path));
      return true;
    }
    YAML::Node tmpl = field(spec, "template");
    if (!tmpl.IsMap()) {
      errors.push_back(fmt::format("{}{}.template: missing", prefix, path));
      return true;
    }
    out.metadata = field(tmpl, "metadata");
    out.spec = field(tmpl, "spec");
    out.meta_path = path + ".template.metadata";
    out.spec_path = path + ".template.spec";
  }
  if (!out.spec.IsMap()) errors.push_back(fmt::format("{}{}: missing", prefix, out.spec_path));
  return true;
}

// Annotations of the workload, then of its pod template (which win).
std::map<std::string, std::string> annotations_of(const YAML::Node& object,
                                                  const PodTemplate& tmpl) {
  std::map<std::string, std::string> out;
  auto add = [&](const YAML::Node& metadata) {
    YAML::Node annotations = field(metadata, "annotations");
    if (!annotations.IsMap()) return;
    for (const auto& kv : annotations) {
      if (kv.first.IsScalar()) out[kv.first.Scalar()] = scalar_or_empty(kv.second);
    }
  };
  add(field(object, "metadata"));
  add(tmpl.metadata);
  return out;
}

std::optional<Settings> settings_for(const std::map<std::string, std::string>& annotations,
                                     const Options& options, const std::string& where,
                                     std::vector<std::string>& errors) {
  Settings s{options.config_map,
             options.mode,
             options.inbound_port,
             YAML::Load(std::string(kDefaultResources)),
             {},
             {}};
  const size_t before = errors.size();
  auto get = [&](std::string_view key) -> const std::string* {
    auto it = annotations.find(std::string(key));
    return it == annotations.end() ? nullptr : &it->second;
  };
  if (const auto* v = get(kConfigAnnotation)) {
    if (valid_dns_subdomain(*v)) {
      s.config_map = *v;
    } else {
      errors.push_back(fmt::format("{}.annotations.{}: \"{}\" is not a ConfigMap name", where,
                                   kConfigAnnotation, *v));
    }
  }
  if (const auto* v = get(kPortAnnotation)) {
    if (auto port = parse_port(*v)) {
      s.inbound_port = *port;
    } else {
      errors.push_back(fmt::format("{}.annotations.{}: \"{}\" is not a port (1-65535)", where,
                                   kPortAnnotation, *v));
    }
  }
  if (const auto* v = get(kModeAnnotation)) {
    if (*v == "native") {
      s.mode = Mode::kNative;
    } else if (*v == "classic") {
      s.mode = Mode::kClassic;
    } else {
      errors.push_back(fmt::format("{}.annotations.{}: \"{}\": expected native or classic", where,
                                   kModeAnnotation, *v));
    }
  }
  if (const auto* v = get(kResourcesAnnotation)) {
    std::string why;
    try {
      YAML::Node r = YAML::Load(*v);
      if (!r.IsMap()) why = "not a map";
      for (const auto& kv : r.IsMap() ? r : YAML::Node(YAML::NodeType::Map)) {
        const std::string key = scalar_or_empty(kv.first);
        if (key != "requests" && key != "limits") {
          why = fmt::format("unknown key \"{}\" (requests, limits)", key);
        } else if (!kv.second.IsMap()) {
          why = fmt::format("{} is not a map", key);
        } else {
          for (const auto& q : kv.second) {
            if (!q.second.IsScalar())
              why = fmt::format("{}.{} is not a quantity", key, scalar_or_empty(q.first));
            YAML::Node quantity = q.second;
            quantity.SetTag("!");  // quantities are strings in the API ("1" stays "1")
          }
        }
      }
      if (why.empty()) s.resources = r;
    } catch (const YAML::Exception& e) {
      why = e.msg;
    }
    if (!why.empty()) {
      errors.push_back(fmt::format("{}.annotations.{}: {}", where, kResourcesAnnotation, why));
    }
  }
  if (const auto* v = get(kMountsAnnotation)) {
    // "VOLUME:PATH[:ro],..."
    size_t pos = 0;
    while (pos <= v->size()) {
      size_t comma = v->find(',', pos);
      std::string item = v->substr(pos, comma == std::string::npos ? comma : comma - pos);
      pos = comma == std::string::npos ? v->size() + 1 : comma + 1;
      Mount m;
      size_t c1 = item.find(':');
      size_t c2 = c1 == std::string::npos ? c1 : item.find(':', c1 + 1);
      m.volume = item.substr(0, c1);
      if (c1 != std::string::npos)
        m.path = item.substr(c1 + 1, c2 == std::string::npos ? c2 : c2 - c1 - 1);
      const std::string flag = c2 == std::string::npos ? "" : item.substr(c2 + 1);
      m.read_only = flag == "ro";
      if (m.volume.empty() || m.path.empty() || m.path[0] != '/' ||
          !(flag.empty() || flag == "ro" || flag == "rw")) {
        errors.push_back(fmt::format("{}.annotations.{}: \"{}\": expected VOLUME:/PATH[:ro]", where,
                                     kMountsAnnotation, item));
        break;
      }
      s.mounts.push_back(std::move(m));
    }
  }
  if (errors.size() != before) return std::nullopt;

  std::string canonical = fmt::format(
      "version={}\nimage={}\nconfig_map={}\nmode={}\ninbound={}\nstatus={}\nresources={}\n",
      options.version, options.image, s.config_map, s.mode == Mode::kNative ? "native" : "classic",
      s.inbound_port, options.status_port, to_json(s.resources));
  for (const auto& m : s.mounts) {
    canonical += fmt::format("mount={}:{}:{}\n", m.volume, m.path, m.read_only);
  }
  s.hash = fnv1a_hex(canonical);
  return s;
}

YAML::Node env_from_field(const char* name, const char* field_path) {
  YAML::Node env(YAML::NodeType::Map);
  env["name"] = string_node(name);
  env["valueFrom"]["fieldRef"]["fieldPath"] = string_node(field_path);
  return env;
}

YAML::Node http_probe(const char* path, uint16_t port, int period, int failures) {
  YAML::Node probe(YAML::NodeType::Map);
  probe["httpGet"]["path"] = string_node(path);
  probe["httpGet"]["port"] = static_cast<int>(port);
  probe["periodSeconds"] = period;
  probe["timeoutSeconds"] = 1;
  probe["failureThreshold"] = failures;
  return probe;
}

YAML::Node sidecar_container(const Options& options, const Settings& s) {
  YAML::Node c(YAML::NodeType::Map);
  c["name"] = string_node(std::string(kContainerName));
  c["image"] = string_node(options.image);
  c["imagePullPolicy"] = string_node("IfNotPresent");
  YAML::Node args(YAML::NodeType::Sequence);
  args.push_back(string_node("-c"));
  args.push_back(string_node(std::string(kConfigMountPath) + "/sidecar.yaml"));
  c["args"] = args;
  // Native sidecar (KEP-753): an init container that keeps running; the
  // kubelet starts the app only once its startupProbe passed, and stops it
  // after the app.
  if (s.mode == Mode::kNative) c["restartPolicy"] = string_node("Always");
  YAML::Node ports(YAML::NodeType::Sequence);
  for (auto [name, port] : {std::pair{"sidecar-http", s.inbound_port},
                            std::pair{"sidecar-status", options.status_port}}) {
    YAML::Node p(YAML::NodeType::Map);
    p["name"] = string_node(name);
    p["containerPort"] = static_cast<int>(port);
    p["protocol"] = string_node("TCP");
    ports.push_back(p);
  }
  c["ports"] = ports;
  YAML::Node env(YAML::NodeType::Sequence);
  env.push_back(env_from_field("POD_NAME", "metadata.name"));
  env.push_back(env_from_field("POD_NAMESPACE", "metadata.namespace"));
  env.push_back(env_from_field("POD_IP", "status.podIP"));
  env.push_back(env_from_field("NODE_NAME", "spec.nodeName"));
  c["env"] = env;
  c["resources"] = YAML::Clone(s.resources);
  YAML::Node sc(YAML::NodeType::Map);
  sc["runAsNonRoot"] = true;
  sc["runAsUser"] = 65532;
  sc["runAsGroup"] = 65532;
  sc["readOnlyRootFilesystem"] = true;
  sc["allowPrivilegeEscalation"] = false;
  sc["capabilities"]["drop"].push_back(string_node("ALL"));
  sc["seccompProfile"]["type"] = string_node("RuntimeDefault");
  c["securityContext"] = sc;
  // /ready covers the listeners and the first sync; up to 2 minutes for a
  // first clone. The status listener (the config's) forwards these paths to
  // the admin endpoint, which stays on loopback.
  c["startupProbe"] = http_probe("/ready", options.status_port, 1, 120);
  c["readinessProbe"] = http_probe("/ready", options.status_port, 5, 2);
  c["livenessProbe"] = http_probe("/healthz", options.status_port, 10, 3);
  YAML::Node mounts(YAML::NodeType::Sequence);
  YAML::Node config_mount(YAML::NodeType::Map);
  config_mount["name"] = string_node(std::string(kConfigVolume));
  config_mount["mountPath"] = string_node(std::string(kConfigMountPath));
  config_mount["readOnly"] = true;
  mounts.push_back(config_mount);
  YAML::Node tmp_mount(YAML::NodeType::Map);
  tmp_mount["name"] = string_node(std::string(kTmpVolume));
  tmp_mount["mountPath"] = string_node("/tmp");
  mounts.push_back(tmp_mount);
  for (const auto& m : s.mounts) {
    YAML::Node mount(YAML::NodeType::Map);
    mount["name"] = string_node(m.volume);
    mount["mountPath"] = string_node(m.path);
    if (m.read_only) mount["readOnly"] = true;
    mounts.push_back(mount);
  }
  c["volumeMounts"] = mounts;
  return c;
}

// Removes the items of a sequence named `name`; returns how many.
int remove_named(YAML::Node parent, const char* key, std::string_view name) {
  YAML::Node seq = field(parent, key);
  if (!seq.IsSequence()) return 0;
  YAML::Node kept(YAML::NodeType::Sequence);
  int removed = 0;
  for (const auto& item : seq) {
    if (scalar_or_empty(field(item, "name")) == name) {
      ++removed;
    } else {
      kept.push_back(item);
    }
  }
  if (removed > 0) {
    if (kept.size() == 0) {
      parent.remove(key);
    } else {
      parent[key] = kept;
    }
  }
  return removed;
}

bool has_named(const YAML::Node& seq, std::string_view name) {
  if (!seq.IsSequence()) return false;
  for (const auto& item : seq) {
    if (scalar_or_empty(field(item, "name")) == name) return true;
  }
  return false;
}

// Checks the pod spec the sidecar goes into; false (with errors) if unfit.
bool check_spec(const YAML::Node& spec, const std::string& path, const std::string& prefix,
                std::vector<std::string>& errors) {
  const size_t before = errors.size();
  YAML::Node containers = field(spec, "containers");
  if (!containers.IsDefined() || containers.IsNull() ||
      (containers.IsSequence() && containers.size() == 0)) {
    errors.push_back(fmt::format("{}{}: containers missing", prefix, path));
  } else if (!containers.IsSequence()) {
    errors.push_back(fmt::format("{}{}.containers: not a list", prefix, path));
  }
  for (const char* key : {"containers", "initContainers"}) {
    YAML::Node seq = field(spec, key);
    if (!seq.IsDefined() || seq.IsNull()) continue;
    if (!seq.IsSequence()) {
      if (std::string_view(key) != "containers") {
        errors.push_back(fmt::format("{}{}.{}: not a list", prefix, path, key));
      }
      continue;
    }
    for (size_t i = 0; i < seq.size(); ++i) {
      if (!seq[i].IsMap() || scalar_or_empty(field(seq[i], "name")).empty()) {
        errors.push_back(
            fmt::format("{}{}.{}[{}]: a container needs a name", prefix, path, key, i));
      }
    }
  }
  YAML::Node volumes = field(spec, "volumes");
  if (volumes.IsDefined() && !volumes.IsNull() && !volumes.IsSequence()) {
    errors.push_back(fmt::format("{}{}.volumes: not a list", prefix, path));
  }
  return errors.size() == before;
}

bool inject_workload(YAML::Node object, const std::string& kind, const Options& options,
                     const std::string& base, const std::string& prefix,
                     std::vector<std::string>& errors, int* skipped) {
  PodTemplate tmpl;
  const size_t before = errors.size();
  if (!find_template(object, kind, tmpl, prefix, errors)) return false;
  if (errors.size() != before) return false;
  tmpl.meta_path = join(base, tmpl.meta_path);
  tmpl.spec_path = join(base, tmpl.spec_path);
  const auto annotations = annotations_of(object, tmpl);
  if (auto it = annotations.find(std::string(kInjectAnnotation)); it != annotations.end()) {
    if (it->second == "false") {
      if (skipped) ++*skipped;
      return false;
    }
    if (it->second != "true") {
      errors.push_back(fmt::format("{}{}.annotations.{}: \"{}\": expected \"true\" or \"false\"",
                                   prefix, tmpl.meta_path, kInjectAnnotation, it->second));
      return false;
    }
  }
  auto settings = settings_for(annotations, options, prefix + tmpl.meta_path, errors);
  if (!settings) return false;
  YAML::Node spec = tmpl.spec;
  if (!check_spec(spec, tmpl.spec_path, prefix, errors)) return false;

  // Already injected with these settings: nothing to do.
  const YAML::Node own = field(tmpl.metadata, "annotations");
  const std::string had_version = scalar_or_empty(field(own, kVersionAnnotation));
  const std::string had_hash = scalar_or_empty(field(own, kHashAnnotation));
  if (had_version == options.version && had_hash == settings->hash) {
    if (skipped) ++*skipped;
    return false;
  }
  if (!had_hash.empty()) {
    // Injected before, with other settings: take the old parts out first.
    remove_named(spec, "initContainers", kContainerName);
    remove_named(spec, "containers", kContainerName);
    remove_named(spec, "volumes", kConfigVolume);
    remove_named(spec, "volumes", kTmpVolume);
  }
  for (const char* key : {"initContainers", "containers"}) {
    if (has_named(field(spec, key), kContainerName)) {
      errors.push_back(fmt::format("{}{}.{}: a container named \"{}\" is already there", prefix,
                                   tmpl.spec_path, key, kContainerName));
    }
  }
  for (std::string_view name : {kConfigVolume, kTmpVolume}) {
    if (has_named(field(spec, "volumes"), name)) {
      errors.push_back(fmt::format("{}{}.volumes: a volume named \"{}\" is already there", prefix,
                                   tmpl.spec_path, name));
    }
  }
  for (const auto& m : settings->mounts) {
    if (!has_named(field(spec, "volumes"), m.volume)) {
      errors.push_back(fmt::format("{}{}.volumes: no volume \"{}\" (named in {})", prefix,
                                   tmpl.spec_path, m.volume, kMountsAnnotation));
    }
  }
  if (errors.size() != before) return false;

  YAML::Node container = sidecar_container(options, *settings);
  if (settings->mode == Mode::kNative) {
    // First, so that it is ready before the other init containers and the app.
    YAML::Node init(YAML::NodeType::Sequence);
    init.push_back(container);
    YAML::Node old = field(spec, "initContainers");
    if (old.IsSequence()) {
      for (const auto& item : old) init.push_back(item);
    }
    spec["initContainers"] = init;
  } else {
    YAML::Node containers = field(spec, "containers");
    containers.push_back(container);
  }
  YAML::Node volumes = [&] {
    YAML::Node existing = field(spec, "volumes");
    if (existing.IsSequence()) return existing;
    YAML::Node created(YAML::NodeType::Sequence);
    spec["volumes"] = created;
    return created;
  }();
  YAML::Node config_volume(YAML::NodeType::Map);
  config_volume["name"] = string_node(std::string(kConfigVolume));
  config_volume["configMap"]["name"] = string_node(settings->config_map);
  volumes.push_back(config_volume);
  YAML::Node tmp_volume(YAML::NodeType::Map);
  tmp_volume["name"] = string_node(std::string(kTmpVolume));
  tmp_volume["emptyDir"]["sizeLimit"] = string_node("64Mi");
  volumes.push_back(tmp_volume);

  // The pod template's metadata: a Pod has its own; a template may have none.
  // Never assign to a YAML::Node that refers into the tree: yaml-cpp's
  // operator= writes through it. Each node here is bound once.
  YAML::Node metadata = [&] {
    if (tmpl.metadata.IsMap()) return tmpl.metadata;
    const YAML::Node spec_holder = kind == "CronJob"
                                       ? field(field(field(object, "spec"), "jobTemplate"), "spec")
                                       : field(object, "spec");
    return ensure_map(kind == "Pod" ? object : field(spec_holder, "template"), "metadata");
  }();
  YAML::Node annotations_node = ensure_map(metadata, "annotations");
  annotations_node[std::string(kVersionAnnotation)] = string_node(options.version);
  annotations_node[std::string(kHashAnnotation)] = string_node(settings->hash);
  return true;
}

// Splits a YAML stream at its document markers ("---" at the start of a
// line). Each part keeps its marker line, so unchanged parts are written back
// byte for byte.
struct Part {
  std::string marker;  // "---...\n", or empty for text before the first marker
  std::string body;
  int first_line = 1;  // of the body, 1-based, in the stream
};

std::vector<Part> split_stream(std::string_view text) {
  std::vector<Part> parts(1);
  int line_no = 1;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    std::string_view line = text.substr(pos, end - pos);
    if (line.substr(0, 3) == "---" && (line.size() == 3 || line[3] == ' ' || line[3] == '\n' ||
                                       line[3] == '\r' || line[3] == '\t')) {
      parts.push_back(Part{std::string(line), "", line_no + 1});
    } else {
      parts.back().body += line;
    }
    ++line_no;
    pos = end;
  }
  return parts;
}

}  // namespace

bool inject_object(YAML::Node object, const Options& options, const std::string& prefix,
                   std::vector<std::string>& errors, int* skipped) {
  if (!object.IsMap()) return false;
  const std::string kind = scalar_or_empty(field(object, "kind"));
  if (kind.ends_with("List")) {
    YAML::Node items = field(object, "items");
    if (!items.IsSequence()) return false;
    bool changed = false;
    for (size_t i = 0; i < items.size(); ++i) {
      YAML::Node item = items[i];
      const std::string item_kind = scalar_or_empty(field(item, "kind"));
      changed |= inject_workload(item, item_kind, options, fmt::format("items[{}]", i), prefix,
                                 errors, skipped);
    }
    return changed;
  }
  return inject_workload(object, kind, options, "", prefix, errors, skipped);
}

InjectResult inject_stream(std::string_view yaml, const Options& options) {
  InjectResult result;
  std::string out;
  int doc = 0;
  for (const Part& part : split_stream(yaml)) {
    std::string text = part.marker.size() > 3 ? part.marker.substr(3) : std::string();
    text += part.body;
    YAML::Node node;
    bool empty = true;
    try {
      node = YAML::Load(text);
      empty = !node.IsDefined() || node.IsNull();
    } catch (const YAML::ParserException& e) {
      empty = false;
      result.errors.push_back(
          fmt::format("doc {}: line {}: {}", doc + 1,
                      part.first_line - (part.marker.empty() ? 0 : 1) + e.mark.line, e.msg));
      ++doc;
      continue;
    }
    if (empty) {
      out += part.marker + part.body;
      continue;
    }
    ++doc;
    if (!inject_object(node, options, fmt::format("doc {}: ", doc), result.errors,
                       &result.skipped)) {
      out += part.marker + part.body;
      continue;
    }
    ++result.injected;
    if (!part.marker.empty()) out += "---\n";
    out += to_yaml(node);
  }
  if (result.errors.empty()) result.output = std::move(out);
  return result;
}

}  // namespace sidecar::k8s
