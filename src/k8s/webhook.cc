#include "k8s/webhook.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>
#include <cstdint>

#include "k8s/json_patch.h"
#include "k8s/yaml_writer.h"

namespace sidecar::k8s {
namespace {

HttpAnswer error(int status, const std::string& message) {
  YAML::Node body(YAML::NodeType::Map);
  body["error"] = string_node(message);
  return {status, "application/json", to_json(body) + "\n"};
}

// RFC 4648 base64, as AdmissionResponse.patch ([]byte in Go) is encoded.
std::string base64(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const uint32_t v =
        (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8) | uint8_t(data[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(v >> shift) & 63];
  }
  if (i < data.size()) {
    uint32_t v = uint8_t(data[i]) << 16;
    if (i + 1 < data.size()) v |= uint8_t(data[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

YAML::Node child(const YAML::Node& map, std::string_view key) {
  if (map.IsMap()) {
    for (const auto& kv : map) {
      if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

}  // namespace

HttpAnswer handle_admission_review(std::string_view body, const Options& options) {
  YAML::Node review;
  try {
    // JSON is YAML: yaml-cpp keeps which scalars were strings (quoted).
    review = YAML::Load(std::string(body));
  } catch (const YAML::Exception& e) {
    return error(400, "not JSON: " + e.msg);
  }
  const YAML::Node request = child(review, "request");
  const YAML::Node uid = child(request, "uid");
  if (!review.IsMap() || !request.IsMap() || !uid.IsScalar()) {
    return error(400, "expected an admission.k8s.io/v1 AdmissionReview with request.uid");
  }
  YAML::Node response(YAML::NodeType::Map);
  response["uid"] = string_node(uid.Scalar());
  response["allowed"] = true;

  const YAML::Node object = child(request, "object");
  std::vector<std::string> errors;
  int skipped = 0;
  if (object.IsMap()) {
    YAML::Node injected = YAML::Clone(object);
    if (inject_object(injected, options, "", errors, &skipped) && errors.empty()) {
      response["patchType"] = string_node("JSONPatch");
      response["patch"] = string_node(base64(json_patch(object, injected)));
    }
  }
  if (!errors.empty()) {
    YAML::Node warnings(YAML::NodeType::Sequence);
    for (const auto& e : errors) warnings.push_back(string_node("sidecar not injected: " + e));
    response["warnings"] = warnings;
  }
  YAML::Node answer(YAML::NodeType::Map);
  answer["apiVersion"] = string_node("admission.k8s.io/v1");
  answer["kind"] = string_node("AdmissionReview");
  answer["response"] = response;
  return {200, "application/json", to_json(answer) + "\n"};
}

HttpAnswer handle_webhook_request(std::string_view method, std::string_view target,
                                  std::string_view body, const Options& options) {
  std::string_view path = target.substr(0, target.find('?'));
  if (path == "/inject") {
    if (method != "POST") return error(405, "POST an AdmissionReview");
    return handle_admission_review(body, options);
  }
  if (path == "/ready" || path == "/healthz") {
    if (method != "GET" && method != "HEAD") return error(405, "GET only");
    return {200, "text/plain", "ok\n"};
  }
  return error(404, fmt::format("no such path: {}", path));
}

}  // namespace sidecar::k8s
