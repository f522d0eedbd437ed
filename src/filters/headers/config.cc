#include "filters/headers/config.h"

#include <fmt/format.h>

#include "http/http1_parser.h"

namespace sidecar::filters::headers {
namespace {

bool valid_name(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n) {
    if (!http::is_tchar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool valid_value(std::string_view v) {
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u != '\t' && (u < 0x20 || u == 0x7f)) return false;
  }
  return true;
}

using Kind = config::LogToken::Kind;

// The variables a header value can use: what is known when the request's
// (or the response's) head goes through the filter. The rest of the access
// log's operators (%DURATION%, %BYTES_SENT%...) are only known at the end.
bool available(Kind k) {
  switch (k) {
    case Kind::kLiteral:
    case Kind::kStartTime:
    case Kind::kMethod:
    case Kind::kPath:
    case Kind::kAuthority:
    case Kind::kScheme:
    case Kind::kRequestHeader:
    case Kind::kResponseHeader:
    case Kind::kProtocol:
    case Kind::kResponseCode:
    case Kind::kUpstreamHost:
    case Kind::kUpstreamCluster:
    case Kind::kRouteName:
    case Kind::kListenerName:
    case Kind::kDownstreamRemoteAddress:
    case Kind::kDownstreamRemoteAddressWithoutPort:
    case Kind::kDownstreamTlsVersion:
    case Kind::kDownstreamPeerSubject:
    case Kind::kDownstreamPeerUriSan:
    case Kind::kRequestedServerName:
    case Kind::kHostname:
      return true;
    default:
      return false;
  }
}

// The position of byte `offset` of a scalar's text (one line; a quoted
// scalar starts one column later than its mark).
YAML::Mark mark_at(const YAML::Node& n, size_t offset) {
  YAML::Mark m = n.Mark();
  m.column += static_cast<int>(offset) + (n.Tag() == "!" ? 1 : 0);
  return m;
}

bool parse_action(const YAML::Node& n, const std::string& what, config::Reader& reader,
                  AppendAction& out) {
  static constexpr std::pair<std::string_view, AppendAction> kActions[] = {
      {"APPEND_IF_EXISTS_OR_ADD", AppendAction::kAppendIfExistsOrAdd},
      {"ADD_IF_ABSENT", AppendAction::kAddIfAbsent},
      {"OVERWRITE_IF_EXISTS_OR_ADD", AppendAction::kOverwriteIfExistsOrAdd},
      {"OVERWRITE_IF_EXISTS", AppendAction::kOverwriteIfExists},
  };
  if (n.IsScalar()) {
    for (const auto& [name, action] : kActions) {
      if (n.Scalar() == name) {
        out = action;
        return true;
      }
    }
  }
  reader.error(n, fmt::format("{}: append_action must be one of APPEND_IF_EXISTS_OR_ADD, "
                              "ADD_IF_ABSENT, OVERWRITE_IF_EXISTS_OR_ADD, OVERWRITE_IF_EXISTS",
                              what));
  return false;
}

void parse_add(const YAML::Node& n, const std::string& what, config::Reader& reader,
               std::vector<HeaderToAdd>& out) {
  if (!n.IsSequence()) {
    reader.error(n, what + " must be a list of { name, value, append_action }");
    return;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    const std::string where = fmt::format("{}[{}]", what, i);
    if (!item.IsMap() || !item["name"] || !item["value"] || !item["name"].IsScalar() ||
        !item["value"].IsScalar()) {
      reader.error(item, where + " must be { name, value, append_action }");
      continue;
    }
    reader.check_keys(item, where,
                      {"name", "value", "append_action", "append", "keep_empty_value"});
    HeaderToAdd h;
    h.name = item["name"].Scalar();
    const std::string value = item["value"].Scalar();
    if (!valid_name(h.name))
      reader.error(item["name"], fmt::format("{}: '{}' is not a field name", where, h.name));
    if (const YAML::Node a = item["append_action"]) parse_action(a, where, reader, h.action);
    // Envoy's deprecated `append` (true: APPEND_IF_EXISTS_OR_ADD, false:
    // OVERWRITE_IF_EXISTS_OR_ADD); with append_action it is an error, as there.
    if (const YAML::Node a = item["append"]) {
      bool append = true;
      if (!a.IsScalar() || !YAML::convert<bool>::decode(a, append)) {
        reader.error(a, where + ": append must be true or false");
      } else if (item["append_action"]) {
        reader.error(a, where + ": append and append_action are both set (use append_action)");
      } else {
        h.action =
            append ? AppendAction::kAppendIfExistsOrAdd : AppendAction::kOverwriteIfExistsOrAdd;
      }
    }
    if (const YAML::Node k = item["keep_empty_value"]) {
      bool keep = false;
      if (!k.IsScalar() || !YAML::convert<bool>::decode(k, keep)) {
        reader.error(k, where + ": keep_empty_value must be true or false");
      }
      h.keep_empty_value = keep;
    }
    std::string error;
    size_t offset = 0;
    auto tokens = config::parse_log_format(value, error, offset);
    if (!tokens) {
      reader.error(mark_at(item["value"], offset), fmt::format("{}: {}", where, error));
      continue;
    }
    // Find each operator's offset again for the error positions below.
    size_t at = 0;
    bool ok = true;
    for (const config::LogToken& t : *tokens) {
      if (t.kind == Kind::kLiteral) {
        if (!valid_value(t.text)) {
          reader.error(item["value"], where + ": control characters in a value");
          ok = false;
        }
        continue;
      }
      at = value.find('%', at);
      while (at != std::string::npos && at + 1 < value.size() && value[at + 1] == '%')
        at = value.find('%', at + 2);
      if (!available(t.kind)) {
        const size_t end = value.find('%', at + 1);
        reader.error(mark_at(item["value"], at),
                     fmt::format("{}: {} is not available in the headers filter (only at the end "
                                 "of a request, or not built)",
                                 where, value.substr(at, end - at + 1)));
        ok = false;
      }
      if (at != std::string::npos) at = value.find('%', at + 1) + 1;
    }
    if (!ok) continue;
    h.value = std::move(*tokens);
    out.push_back(std::move(h));
  }
}

void parse_remove(const YAML::Node& n, const std::string& what, config::Reader& reader,
                  std::vector<std::string>& out) {
  if (!n.IsSequence()) {
    reader.error(n, what + " must be a list of field names");
    return;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string name = n[i].IsScalar() ? n[i].Scalar() : "";
    if (!valid_name(name)) {
      reader.error(n[i], fmt::format("{}: '{}' is not a field name", what, name));
      continue;
    }
    out.push_back(name);
  }
}

}  // namespace

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader) {
  auto c = std::make_shared<Config>();
  if (!node || !node.IsMap()) {
    reader.error(node, "the headers filter needs a config mapping");
    return c;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;
    const std::string k = key.Scalar();
    if (k == "request_headers_to_add") {
      parse_add(it->second, k, reader, c->request_add);
    } else if (k == "request_headers_to_remove") {
      parse_remove(it->second, k, reader, c->request_remove);
    } else if (k == "response_headers_to_add") {
      parse_add(it->second, k, reader, c->response_add);
    } else if (k == "response_headers_to_remove") {
      parse_remove(it->second, k, reader, c->response_remove);
    } else {
      reader.error(key, fmt::format("unknown key '{}' in the headers filter (expected one of: "
                                    "request_headers_to_add, request_headers_to_remove, "
                                    "response_headers_to_add, response_headers_to_remove)",
                                    k));
    }
  }
  return c;
}

}  // namespace sidecar::filters::headers
