#include "filters/credential_injector/config.h"

#include <fmt/format.h>

#include "http/http1_parser.h"

namespace sidecar::filters::credential_injector {
namespace {

void parse_path(const YAML::Node& n, const std::string& where, config::Reader& reader,
                std::string& out, std::initializer_list<std::string_view> keys) {
  if (!reader.is_map(n, where)) return;
  reader.check_keys(n, where, keys);
  if (!n["path"]) {
    reader.error(n, where + " needs a path");
    return;
  }
  reader.get_string(n["path"], where + ".path", out);
}

}  // namespace

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader) {
  auto c = std::make_shared<Config>();
  if (!node || !node.IsMap()) {
    reader.error(node, "the credential_injector filter needs a config mapping");
    return c;
  }
  reader.check_keys(node, "credential_injector",
                    {"disabled", "overwrite", "bearer_from_file", "basic_from_file",
                     "header_from_file", "oauth2_client_credentials"});
  if (auto v = node["disabled"]) reader.get_bool(v, "credential_injector.disabled", c->disabled);
  if (auto v = node["overwrite"]) reader.get_bool(v, "credential_injector.overwrite", c->overwrite);
  int kinds = 0;
  if (auto v = node["bearer_from_file"]) {
    ++kinds;
    c->kind = Config::Kind::kBearerFile;
    parse_path(v, "credential_injector.bearer_from_file", reader, c->path, {"path"});
  }
  if (auto v = node["basic_from_file"]) {
    ++kinds;
    c->kind = Config::Kind::kBasicFile;
    parse_path(v, "credential_injector.basic_from_file", reader, c->path, {"path"});
  }
  if (auto v = node["header_from_file"]) {
    ++kinds;
    c->kind = Config::Kind::kHeaderFile;
    const std::string w = "credential_injector.header_from_file";
    parse_path(v, w, reader, c->path, {"name", "path"});
    if (v.IsMap()) {
      if (reader.get_string(v["name"], w + ".name", c->header)) {
        bool ok = !c->header.empty();
        for (char& ch : c->header) {
          ok = ok && http::is_tchar(static_cast<unsigned char>(ch));
          ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        if (!ok) reader.error(v["name"], w + ".name is not a field name");
      }
    }
  }
  if (auto v = node["oauth2_client_credentials"]) {
    ++kinds;
    c->kind = Config::Kind::kOAuth2;
    const std::string w = "credential_injector.oauth2_client_credentials";
    if (reader.is_map(v, w)) {
      reader.check_keys(
          v, w, {"token_endpoint", "client_id", "client_secret_file", "scopes", "audience"});
      if (auto t = v["token_endpoint"]; !t) {
        reader.error(v, w + " needs token_endpoint: { uri, cluster, timeout }");
      } else if (reader.is_map(t, w + ".token_endpoint")) {
        const std::string tw = w + ".token_endpoint";
        reader.check_keys(t, tw, {"uri", "cluster", "timeout"});
        std::string uri;
        if (reader.get_string(t["uri"], tw + ".uri", uri)) {
          const size_t scheme = uri.find("://");
          if (scheme == std::string::npos) {
            reader.error(t["uri"], tw + ".uri must be http://host[:port]/path");
          } else {
            std::string rest = uri.substr(scheme + 3);
            const size_t slash = rest.find('/');
            c->token_host = rest.substr(0, slash);
            c->token_path = slash == std::string::npos ? "/" : rest.substr(slash);
          }
        }
        if (reader.get_string(t["cluster"], tw + ".cluster", c->token_cluster))
          c->token_cluster_origin = reader.origin(t["cluster"]);
        if (auto d = t["timeout"]) reader.get_duration(d, tw + ".timeout", c->token_timeout);
      }
      reader.get_string(v["client_id"], w + ".client_id", c->client_id);
      reader.get_string(v["client_secret_file"], w + ".client_secret_file", c->client_secret_file);
      if (auto s = v["scopes"]) reader.get_strings(s, w + ".scopes", c->scopes);
      if (auto a = v["audience"]) reader.get_string(a, w + ".audience", c->audience);
    }
  }
  if (kinds > 1 || (kinds == 0 && !c->disabled)) {
    reader.error(node,
                 "credential_injector needs exactly one of bearer_from_file, basic_from_file, "
                 "header_from_file, oauth2_client_credentials (or, on a route, disabled: true)");
  }
  return c;
}

}  // namespace sidecar::filters::credential_injector
