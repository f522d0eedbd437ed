#include "logship/config.h"

#include <charconv>

#include <fmt/format.h>
#include <re2/re2.h>

#include "module/module.h"

namespace sidecar::logship {
namespace {

using config::Reader;

bool get_regex(Reader& r, const YAML::Node& n, const std::string& what, Regex& out) {
  std::string pattern;
  if (!r.get_string(n, what, pattern)) return false;
  RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_shared<const re2::RE2>(pattern, options);
  if (!re->ok()) {
    r.error(n, fmt::format("{}: invalid regex: {}", what, re->error()));
    return false;
  }
  out = std::move(re);
  return true;
}

// "HOST:PORT" without resolving (the collector may not exist yet).
bool get_host_port(Reader& r, const YAML::Node& n, const std::string& what, std::string& host,
                   uint16_t& port) {
  std::string s;
  if (!r.get_string(n, what, s)) return false;
  const size_t colon = s.rfind(':');
  unsigned p = 0;
  if (colon != std::string::npos && colon > 0) {
    auto [end, ec] = std::from_chars(s.data() + colon + 1, s.data() + s.size(), p);
    if (ec == std::errc() && end == s.data() + s.size() && p > 0 && p <= 65535) {
      host = s.substr(0, colon);
      if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
      }
      port = static_cast<uint16_t>(p);
      return true;
    }
  }
  r.error(n, fmt::format("{}: expected HOST:PORT, not '{}'", what, s));
  return false;
}

// http://host[:port]/path (https:// needs the TLS transport, issue 8).
bool get_url(Reader& r, const YAML::Node& n, const std::string& what, OutputConfig& o) {
  std::string s;
  if (!r.get_string(n, what, s)) return false;
  if (s.starts_with("https://")) {
    r.error(n, what + ": https:// is not supported yet (it needs the TLS transport); use http://");
    return false;
  }
  if (!s.starts_with("http://")) {
    r.error(n, what + " must be an http:// URL");
    return false;
  }
  std::string rest = s.substr(7);
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  const std::string target = slash == std::string::npos ? "/" : rest.substr(slash);
  const size_t colon = authority.rfind(':');
  unsigned port = 80;
  if (colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
    auto [end, ec] =
        std::from_chars(authority.data() + colon + 1, authority.data() + authority.size(), port);
    if (ec != std::errc() || end != authority.data() + authority.size() || port == 0 ||
        port > 65535) {
      r.error(n, what + ": invalid port in '" + s + "'");
      return false;
    }
    authority.resize(colon);
  }
  if (authority.size() > 2 && authority.front() == '[' && authority.back() == ']') {
    authority = authority.substr(1, authority.size() - 2);
  }
  if (authority.empty()) {
    r.error(n, what + ": no host in '" + s + "'");
    return false;
  }
  o.url = target;
  o.host = authority;
  o.port = static_cast<uint16_t>(port);
  return true;
}

std::string base64(std::string_view in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out += {k[v >> 18], k[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
  return out;
}

const std::pair<std::string_view, ParserConfig::Kind> kParserKinds[] = {
    {"json", ParserConfig::Kind::kJson},     {"logfmt", ParserConfig::Kind::kLogfmt},
    {"regex", ParserConfig::Kind::kRegex},   {"cri", ParserConfig::Kind::kCri},
    {"docker", ParserConfig::Kind::kDocker}, {"syslog", ParserConfig::Kind::kSyslog},
    {"nginx", ParserConfig::Kind::kNginx},   {"apache", ParserConfig::Kind::kApache}};

void load_parser_fields(Reader& r, const YAML::Node& n, const std::string& where, ParserConfig& p) {
  if (auto v = n["type"]) {
    std::string type;
    if (r.get_enum(v, where + ".type", type,
                   {"json", "logfmt", "regex", "cri", "docker", "syslog", "nginx", "apache"})) {
      for (const auto& [name, kind] : kParserKinds) {
        if (name == type) p.kind = kind;
      }
    }
  } else if (n["regex"]) {
    p.kind = ParserConfig::Kind::kRegex;
  } else {
    r.error(n, where + " needs a type (or a regex)");
  }
  if (auto v = n["regex"]) {
    if (p.kind != ParserConfig::Kind::kRegex) r.error(v, where + ".regex needs type: regex");
    if (get_regex(r, v, where + ".regex", p.regex) && p.regex->NumberOfCapturingGroups() > 0 &&
        p.regex->NamedCapturingGroups().empty()) {
      r.error(v, where + ".regex needs named groups: (?P<name>...)");
    }
  } else if (p.kind == ParserConfig::Kind::kRegex) {
    r.error(n, where + " of type regex needs a regex");
  }
  if (auto v = n["time_key"]) r.get_string(v, where + ".time_key", p.time_key);
  if (auto v = n["time_format"]) r.get_string(v, where + ".time_format", p.time_format);
  if (auto v = n["keep_time_key"]) r.get_bool(v, where + ".keep_time_key", p.keep_time_key);
}

// A named parser under `parsers:`.
void load_named_parser(Reader& r, const YAML::Node& n, const std::string& where,
                       std::vector<ParserConfig>& out) {
  if (!r.is_map(n, where)) return;
  r.check_keys(n, where, {"name", "type", "regex", "time_key", "time_format", "keep_time_key"});
  ParserConfig p;
  if (auto v = n["name"]) {
    r.get_string(v, where + ".name", p.name);
    for (const auto& other : out) {
      if (other.name == p.name) r.error(v, fmt::format("parser '{}' is defined twice", p.name));
    }
  } else {
    r.error(n, where + " needs a name");
  }
  load_parser_fields(r, n, where, p);
  out.push_back(std::move(p));
}

// One entry of an input's `parser`: a built-in or named parser, or an inline one.
void load_parser_ref(Reader& r, const YAML::Node& n, const std::string& where,
                     const std::vector<ParserConfig>& named, InputConfig& in) {
  if (n.IsMap()) {
    r.check_keys(n, where, {"type", "regex", "time_key", "time_format", "keep_time_key"});
    ParserConfig p;
    load_parser_fields(r, n, where, p);
    p.name = "inline";
    in.parsers.push_back(std::move(p));
    return;
  }
  std::string name;
  if (!r.get_string(n, where, name)) return;
  for (const ParserConfig& p : named) {
    if (p.name == name) {
      in.parsers.push_back(p);
      return;
    }
  }
  for (const auto& [builtin, kind] : kParserKinds) {
    if (builtin == name && kind != ParserConfig::Kind::kRegex) {
      ParserConfig p;
      p.name = name;
      p.kind = kind;
      if (kind == ParserConfig::Kind::kCri || kind == ParserConfig::Kind::kDocker) {
        p.time_key = "time";
        p.keep_time_key = false;
      }
      in.parsers.push_back(std::move(p));
      if (kind == ParserConfig::Kind::kCri) in.cri_partials = true;
      return;
    }
  }
  r.error(n, fmt::format("{}: unknown parser '{}' (json, logfmt, cri, docker, syslog, nginx, "
                         "apache, or a name under logs.parsers)",
                         where, name));
}

void load_multiline(Reader& r, const YAML::Node& n, const std::string& where, InputConfig& in) {
  MultilineConfig& m = in.multiline;
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (s == "java") {
      m.mode = MultilineConfig::Mode::kJava;
    } else if (s == "python") {
      m.mode = MultilineConfig::Mode::kPython;
    } else if (s == "go") {
      m.mode = MultilineConfig::Mode::kGo;
    } else if (s == "cri") {
      in.cri_partials = true;
    } else {
      r.error(n, where + " must be java, python, go, cri or a mapping with a start pattern");
    }
    return;
  }
  if (!r.is_map(n, where)) return;
  r.check_keys(n, where, {"start", "rules", "timeout", "max_lines", "max_bytes"});
  if (auto v = n["start"]) {
    if (get_regex(r, v, where + ".start", m.start)) m.mode = MultilineConfig::Mode::kStart;
  }
  if (auto v = n["rules"]) {
    std::string rules;
    if (r.get_enum(v, where + ".rules", rules, {"java", "python", "go", "cri"})) {
      if (rules == "java") m.mode = MultilineConfig::Mode::kJava;
      if (rules == "python") m.mode = MultilineConfig::Mode::kPython;
      if (rules == "go") m.mode = MultilineConfig::Mode::kGo;
      if (rules == "cri") in.cri_partials = true;
    }
  }
  if (n["start"] && n["rules"]) r.error(n, where + " takes one of start or rules");
  if (!n["start"] && !n["rules"]) r.error(n, where + " needs a start pattern or rules");
  if (auto v = n["timeout"]) r.get_duration(v, where + ".timeout", m.timeout);
  if (auto v = n["max_lines"]) r.get_count(v, where + ".max_lines", m.max_lines, 1, 1000000);
  if (auto v = n["max_bytes"]) r.get_size(v, where + ".max_bytes", m.max_bytes, 1, 64 << 20);
}

void load_filter(Reader& r, const YAML::Node& n, const std::string& where,
                 std::vector<FilterConfig>& out) {
  if (!r.is_map(n, where)) return;
  if (n.size() != 1) {
    r.error(n, where + " takes one of add, rename, remove, grep, sample, rate_limit, redact");
    return;
  }
  const std::string kind = n.begin()->first.as<std::string>("");
  const YAML::Node v = n.begin()->second;
  const std::string w = where + "." + kind;
  FilterConfig f;
  auto pairs = [&] {
    if (!r.is_map(v, w)) return;
    for (auto it = v.begin(); it != v.end(); ++it) {
      std::string value;
      if (r.get_string(it->second, w, value)) f.pairs.emplace_back(it->first.Scalar(), value);
    }
  };
  if (kind == "add") {
    f.kind = FilterConfig::Kind::kAdd;
    pairs();
  } else if (kind == "rename") {
    f.kind = FilterConfig::Kind::kRename;
    pairs();
  } else if (kind == "remove") {
    f.kind = FilterConfig::Kind::kRemove;
    r.get_strings(v, w, f.keys);
  } else if (kind == "grep") {
    f.kind = FilterConfig::Kind::kGrep;
    if (r.is_map(v, w)) {
      r.check_keys(v, w, {"field", "include", "exclude"});
      if (auto x = v["field"]) r.get_string(x, w + ".field", f.field);
      if (f.field.empty()) r.error(v, w + " needs a field");
      if (auto x = v["include"]) get_regex(r, x, w + ".include", f.regex);
      if (auto x = v["exclude"]) {
        get_regex(r, x, w + ".exclude", f.regex);
        f.exclude = true;
      }
      if (!!v["include"] == !!v["exclude"]) r.error(v, w + " takes one of include or exclude");
    }
  } else if (kind == "sample") {
    f.kind = FilterConfig::Kind::kSample;
    r.get_double(v, w, f.rate, 0.0, 1.0);
  } else if (kind == "rate_limit") {
    f.kind = FilterConfig::Kind::kRateLimit;
    if (r.is_map(v, w)) {
      r.check_keys(v, w, {"records", "per"});
      if (auto x = v["records"]) {
        r.get_count(x, w + ".records", f.records, 1, 1u << 30);
      } else {
        r.error(v, w + " needs records");
      }
      if (auto x = v["per"]) {
        if (r.get_duration(x, w + ".per", f.per) && f.per.count() == 0) {
          r.error(x, w + ".per must be more than 0");
        }
      }
    }
  } else if (kind == "redact") {
    f.kind = FilterConfig::Kind::kRedact;
    if (r.is_map(v, w)) {
      r.check_keys(v, w, {"regex", "fields", "replacement"});
      if (auto x = v["regex"]) {
        get_regex(r, x, w + ".regex", f.regex);
      } else {
        r.error(v, w + " needs a regex");
      }
      if (auto x = v["fields"]) r.get_strings(x, w + ".fields", f.fields);
      if (auto x = v["replacement"]) r.get_string(x, w + ".replacement", f.replacement);
    }
  } else {
    r.error(n.begin()->first, fmt::format("{}: unknown filter '{}' (add, rename, remove, grep, "
                                          "sample, rate_limit, redact)",
                                          where, kind));
    return;
  }
  out.push_back(std::move(f));
}

void load_input(Reader& r, const YAML::Node& n, size_t index,
                const std::vector<ParserConfig>& named, Section& c) {
  const std::string where = fmt::format("logs.inputs[{}]", index);
  if (!r.is_map(n, where)) return;
  r.check_keys(n, where, {"name", "tag", "file", "app_stdout", "parser", "multiline", "filters"});
  InputConfig in;
  if (auto v = n["name"]) {
    r.get_string(v, where + ".name", in.name);
    for (const auto& other : c.inputs) {
      if (other.name == in.name) r.error(v, fmt::format("input '{}' is defined twice", in.name));
    }
  } else {
    r.error(n, where + " needs a name");
  }
  in.tag = in.name;
  if (auto v = n["tag"]) r.get_string(v, where + ".tag", in.tag);
  if (!!n["file"] == !!n["app_stdout"]) r.error(n, where + " takes one of file or app_stdout");
  if (auto f = n["file"]) {
    const std::string w = where + ".file";
    in.kind = InputConfig::Kind::kFile;
    FileInputConfig& fc = in.file;
    if (r.is_map(f, w)) {
      r.check_keys(
          f, w,
          {"paths", "exclude", "read_from", "rotate_wait", "poll_interval", "fingerprint_size",
           "max_line_size", "long_lines", "max_open_files", "path_key"});
      if (auto v = f["paths"]) {
        if (r.get_strings(v, w + ".paths", fc.paths)) {
          for (const auto& p : fc.paths) {
            if (p.empty() || p[0] != '/') r.error(v, w + ".paths must be absolute: " + p);
          }
        }
      }
      if (fc.paths.empty()) r.error(f, w + " needs paths");
      if (auto v = f["exclude"]) r.get_strings(v, w + ".exclude", fc.exclude);
      if (auto v = f["read_from"]) {
        std::string s;
        if (r.get_enum(v, w + ".read_from", s, {"head", "tail"})) fc.read_from_head = s == "head";
      }
      if (auto v = f["rotate_wait"]) r.get_duration(v, w + ".rotate_wait", fc.rotate_wait);
      if (auto v = f["poll_interval"]) {
        if (r.get_duration(v, w + ".poll_interval", fc.poll_interval) &&
            fc.poll_interval.count() == 0) {
          r.error(v, w + ".poll_interval must be more than 0");
        }
      }
      if (auto v = f["fingerprint_size"]) {
        r.get_size32(v, w + ".fingerprint_size", fc.fingerprint_size, 16, 64 << 10);
      }
      if (auto v = f["max_line_size"]) {
        r.get_size(v, w + ".max_line_size", fc.max_line_size, 64, 256 << 20);
      }
      if (auto v = f["long_lines"]) {
        std::string s;
        if (r.get_enum(v, w + ".long_lines", s, {"split", "truncate"})) {
          fc.truncate_long_lines = s == "truncate";
        }
      }
      if (auto v = f["max_open_files"]) {
        r.get_count(v, w + ".max_open_files", fc.max_open_files, 1, 65536);
      }
      if (auto v = f["path_key"]) r.get_string(v, w + ".path_key", fc.path_key);
    }
  }
  if (auto s = n["app_stdout"]) {
    const std::string w = where + ".app_stdout";
    in.kind = InputConfig::Kind::kAppStdout;
    StdoutInputConfig& sc = in.app_stdout;
    if (s.IsNull()) {
      // app_stdout: (no value) is the same as {}
    } else if (r.is_map(s, w)) {
      r.check_keys(s, w, {"streams", "buffer_size", "max_line_size", "stream_key"});
      if (auto v = s["streams"]) {
        std::vector<std::string> streams;
        if (r.get_strings(v, w + ".streams", streams)) {
          sc.stdout_stream = sc.stderr_stream = false;
          for (const auto& st : streams) {
            if (st == "stdout") {
              sc.stdout_stream = true;
            } else if (st == "stderr") {
              sc.stderr_stream = true;
            } else {
              r.error(v, w + ".streams takes stdout and stderr, not " + st);
            }
          }
        }
      }
      if (auto v = s["buffer_size"]) {
        r.get_size(v, w + ".buffer_size", sc.buffer_size, 64 << 10, 1ull << 30);
      }
      if (auto v = s["max_line_size"]) {
        r.get_size(v, w + ".max_line_size", sc.max_line_size, 64, 256 << 20);
      }
      if (auto v = s["stream_key"]) r.get_string(v, w + ".stream_key", sc.stream_key);
    }
  }
  if (auto v = n["parser"]) {
    if (v.IsSequence()) {
      for (size_t i = 0; i < v.size(); ++i) {
        load_parser_ref(r, v[i], fmt::format("{}.parser[{}]", where, i), named, in);
      }
    } else {
      load_parser_ref(r, v, where + ".parser", named, in);
    }
  }
  if (auto v = n["multiline"]) load_multiline(r, v, where + ".multiline", in);
  if (auto v = n["filters"]) {
    if (r.is_seq(v, where + ".filters")) {
      for (size_t i = 0; i < v.size(); ++i) {
        load_filter(r, v[i], fmt::format("{}.filters[{}]", where, i), in.filters);
      }
    }
  }
  c.inputs.push_back(std::move(in));
}

void load_format(Reader& r, const YAML::Node& n, const std::string& what, OutputConfig& o,
                 bool array) {
  std::string s;
  const bool ok = array ? r.get_enum(n, what, s, {"ndjson", "json_lines", "json_array"})
                        : r.get_enum(n, what, s, {"json_lines", "raw"});
  if (!ok) return;
  o.format = s == "raw"          ? OutputConfig::Format::kRaw
             : s == "json_array" ? OutputConfig::Format::kJsonArray
                                 : OutputConfig::Format::kJsonLines;
}

void load_http_common(Reader& r, const YAML::Node& n, const std::string& w, OutputConfig& o) {
  if (auto v = n["url"]) {
    get_url(r, v, w + ".url", o);
  } else {
    r.error(n, w + " needs a url");
  }
  if (auto v = n["headers"]) {
    if (r.is_map(v, w + ".headers")) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        std::string value;
        if (r.get_string(it->second, w + ".headers", value)) {
          o.headers.emplace_back(it->first.Scalar(), value);
        }
      }
    }
  }
  if (auto v = n["auth"]) {
    const std::string aw = w + ".auth";
    if (r.is_map(v, aw)) {
      r.check_keys(v, aw, {"user", "password", "bearer_token"});
      std::string user, password, token;
      if (auto x = v["user"]) r.get_string(x, aw + ".user", user);
      if (auto x = v["password"]) r.get_string(x, aw + ".password", password);
      if (auto x = v["bearer_token"]) r.get_string(x, aw + ".bearer_token", token);
      if (!token.empty() && !user.empty()) {
        r.error(v, aw + " takes user/password or bearer_token");
      } else if (!token.empty()) {
        o.auth_header = "Bearer " + token;
      } else if (!user.empty()) {
        o.auth_header = "Basic " + base64(user + ":" + password);
      } else {
        r.error(v, aw + " needs user (and password) or bearer_token");
      }
    }
  }
  if (auto v = n["gzip"]) r.get_bool(v, w + ".gzip", o.gzip);
}

void load_output(Reader& r, const YAML::Node& n, size_t index, Section& c) {
  const std::string where = fmt::format("logs.outputs[{}]", index);
  if (!r.is_map(n, where)) return;
  r.check_keys(n, where,
               {"name", "match", "where", "tcp", "udp", "syslog", "http", "loki", "elasticsearch",
                "file", "stdout", "batch", "buffer", "retry", "timeout", "time_key", "tag_key"});
  OutputConfig o;
  if (auto v = n["name"]) {
    if (r.get_string(v, where + ".name", o.name)) {
      for (const auto& other : c.outputs) {
        if (other.name == o.name) r.error(v, fmt::format("output '{}' is defined twice", o.name));
      }
      for (char ch : o.name) {
        if (!isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.') {
          r.error(v, where +
                         ".name may hold letters, digits, '-', '_' and '.' (it names a "
                         "folder of the state directory)");
          break;
        }
      }
    }
  } else {
    r.error(n, where + " needs a name");
  }
  if (auto v = n["match"]) {
    r.get_strings(v, where + ".match", o.match);
  } else {
    o.match = {"*"};
  }
  if (auto v = n["where"]) {
    const std::string w = where + ".where";
    if (r.is_map(v, w)) {
      r.check_keys(v, w, {"field", "regex"});
      if (auto x = v["field"]) r.get_string(x, w + ".field", o.where_field);
      if (auto x = v["regex"]) get_regex(r, x, w + ".regex", o.where_regex);
      if (o.where_field.empty() || !o.where_regex) r.error(v, w + " needs a field and a regex");
    }
  }
  int kinds = 0;
  const std::pair<const char*, OutputConfig::Kind> kKinds[] = {
      {"tcp", OutputConfig::Kind::kTcp},
      {"udp", OutputConfig::Kind::kUdp},
      {"syslog", OutputConfig::Kind::kSyslog},
      {"http", OutputConfig::Kind::kHttp},
      {"loki", OutputConfig::Kind::kLoki},
      {"elasticsearch", OutputConfig::Kind::kElasticsearch},
      {"file", OutputConfig::Kind::kFile},
      {"stdout", OutputConfig::Kind::kStdout}};
  for (const auto& [key, kind] : kKinds) {
    const YAML::Node v = n[key];
    if (!v) continue;
    ++kinds;
    o.kind = kind;
    const std::string w = where + "." + key;
    if (v.IsNull()) {
      if (kind != OutputConfig::Kind::kStdout) r.error(v, w + " must be a mapping");
      continue;
    }
    if (!r.is_map(v, w)) continue;
    switch (kind) {
      case OutputConfig::Kind::kTcp:
      case OutputConfig::Kind::kUdp:
        r.check_keys(v, w, {"address", "format", "message_key"});
        if (auto x = v["address"]) {
          get_host_port(r, x, w + ".address", o.host, o.port);
        } else {
          r.error(v, w + " needs an address");
        }
        if (auto x = v["format"]) load_format(r, x, w + ".format", o, false);
        if (auto x = v["message_key"]) r.get_string(x, w + ".message_key", o.message_key);
        break;
      case OutputConfig::Kind::kSyslog: {
        r.check_keys(v, w,
                     {"address", "transport", "facility", "app_name", "hostname", "severity_key",
                      "message_key"});
        if (auto x = v["address"]) {
          get_host_port(r, x, w + ".address", o.host, o.port);
        } else {
          r.error(v, w + " needs an address");
        }
        std::string transport = "tcp";
        if (auto x = v["transport"]) r.get_enum(x, w + ".transport", transport, {"tcp", "udp"});
        o.syslog_udp = transport == "udp";
        if (auto x = v["facility"]) r.get_count(x, w + ".facility", o.syslog_facility, 0, 23);
        if (auto x = v["app_name"]) r.get_string(x, w + ".app_name", o.syslog_app_name);
        if (auto x = v["hostname"]) r.get_string(x, w + ".hostname", o.syslog_hostname);
        if (auto x = v["severity_key"]) r.get_string(x, w + ".severity_key", o.severity_key);
        if (auto x = v["message_key"]) r.get_string(x, w + ".message_key", o.message_key);
        break;
      }
      case OutputConfig::Kind::kHttp:
        r.check_keys(v, w, {"url", "format", "gzip", "headers", "auth"});
        load_http_common(r, v, w, o);
        if (auto x = v["format"]) load_format(r, x, w + ".format", o, true);
        break;
      case OutputConfig::Kind::kLoki:
        r.check_keys(v, w,
                     {"url", "gzip", "headers", "auth", "labels", "label_keys", "message_key"});
        load_http_common(r, v, w, o);
        if (auto x = v["labels"]) {
          if (r.is_map(x, w + ".labels")) {
            for (auto it = x.begin(); it != x.end(); ++it) {
              std::string value;
              if (r.get_string(it->second, w + ".labels", value)) {
                o.labels[it->first.Scalar()] = value;
              }
            }
          }
        }
        if (auto x = v["label_keys"]) r.get_strings(x, w + ".label_keys", o.label_keys);
        if (auto x = v["message_key"]) r.get_string(x, w + ".message_key", o.message_key);
        break;
      case OutputConfig::Kind::kElasticsearch:
        r.check_keys(v, w, {"url", "gzip", "headers", "auth", "index"});
        load_http_common(r, v, w, o);
        if (auto x = v["index"]) r.get_string(x, w + ".index", o.index);
        if (o.url == "/") o.url = "/_bulk";
        o.time_key = "@timestamp";
        break;
      case OutputConfig::Kind::kFile:
        r.check_keys(v, w, {"path", "format", "max_size", "max_files", "message_key"});
        if (auto x = v["path"]) {
          if (r.get_string(x, w + ".path", o.path) && (o.path.empty() || o.path[0] != '/')) {
            r.error(x, w + ".path must be absolute");
          }
        } else {
          r.error(v, w + " needs a path");
        }
        if (auto x = v["format"]) load_format(r, x, w + ".format", o, false);
        if (auto x = v["max_size"]) {
          r.get_size(x, w + ".max_size", o.file_max_size, 4096, 1ull << 40);
        }
        if (auto x = v["max_files"]) r.get_count(x, w + ".max_files", o.file_max_files, 0, 1000);
        if (auto x = v["message_key"]) r.get_string(x, w + ".message_key", o.message_key);
        break;
      case OutputConfig::Kind::kStdout:
        r.check_keys(v, w, {"format", "message_key"});
        if (auto x = v["format"]) load_format(r, x, w + ".format", o, false);
        if (auto x = v["message_key"]) r.get_string(x, w + ".message_key", o.message_key);
        break;
    }
  }
  if (kinds != 1) {
    r.error(n, where + " takes one of tcp, udp, syslog, http, loki, elasticsearch, file or stdout");
  }
  if (auto v = n["batch"]) {
    const std::string w = where + ".batch";
    if (r.is_map(v, w)) {
      r.check_keys(v, w, {"max_bytes", "timeout"});
      if (auto x = v["max_bytes"]) {
        r.get_size(x, w + ".max_bytes", o.batch_max_bytes, 1024, 64ull << 20);
      }
      if (auto x = v["timeout"]) r.get_duration(x, w + ".timeout", o.batch_timeout);
    }
  }
  if (auto v = n["buffer"]) {
    const std::string w = where + ".buffer";
    if (r.is_map(v, w)) {
      r.check_keys(v, w, {"type", "memory_size", "max_size", "when_full"});
      std::string s;
      if (auto x = v["type"]) {
        if (r.get_enum(x, w + ".type", s, {"memory", "disk"})) o.buffer.disk = s == "disk";
      }
      if (auto x = v["memory_size"]) {
        r.get_size(x, w + ".memory_size", o.buffer.memory_size, 64 << 10, 1ull << 34);
      }
      if (auto x = v["max_size"]) {
        r.get_size(x, w + ".max_size", o.buffer.max_size, 64 << 10, 1ull << 44);
      }
      if (auto x = v["when_full"]) {
        if (r.get_enum(x, w + ".when_full", s, {"block", "drop_oldest"})) {
          o.buffer.drop_oldest = s == "drop_oldest";
        }
      }
      if (!o.buffer.disk && v["max_size"] && !v["memory_size"]) {
        o.buffer.memory_size = o.buffer.max_size;  // a memory buffer's max_size is its memory
      }
    }
  }
  if (auto v = n["retry"]) {
    const std::string w = where + ".retry";
    if (r.is_map(v, w)) {
      r.check_keys(v, w, {"initial_backoff", "max_backoff", "max_retries"});
      if (auto x = v["initial_backoff"]) {
        r.get_duration(x, w + ".initial_backoff", o.retry.initial_backoff);
      }
      if (auto x = v["max_backoff"]) r.get_duration(x, w + ".max_backoff", o.retry.max_backoff);
      if (auto x = v["max_retries"]) {
        r.get_count(x, w + ".max_retries", o.retry.max_retries, 0, 1u << 30);
      }
    }
  }
  if (auto v = n["timeout"]) r.get_duration(v, where + ".timeout", o.timeout);
  if (auto v = n["time_key"]) r.get_string(v, where + ".time_key", o.time_key);
  if (auto v = n["tag_key"]) r.get_string(v, where + ".tag_key", o.tag_key);
  c.outputs.push_back(std::move(o));
}

}  // namespace

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& r) {
  auto c = std::make_shared<Section>();
  if (!r.is_map(node, "logs")) return c;
  r.check_keys(node, "logs",
               {"state_dir", "checkpoint_interval", "fsync", "inputs", "parsers", "outputs"});
  if (auto v = node["state_dir"]) {
    if (r.get_string(v, "logs.state_dir", c->state_dir) &&
        (c->state_dir.empty() || c->state_dir[0] != '/')) {
      r.error(v, "logs.state_dir must be an absolute path");
    }
  }
  if (auto v = node["checkpoint_interval"]) {
    r.get_duration(v, "logs.checkpoint_interval", c->checkpoint_interval);
  }
  if (auto v = node["fsync"]) r.get_bool(v, "logs.fsync", c->fsync);
  std::vector<ParserConfig> named;
  if (auto v = node["parsers"]) {
    if (r.is_seq(v, "logs.parsers")) {
      for (size_t i = 0; i < v.size(); ++i) {
        load_named_parser(r, v[i], fmt::format("logs.parsers[{}]", i), named);
      }
    }
  }
  if (auto v = node["inputs"]) {
    if (r.is_seq(v, "logs.inputs")) {
      for (size_t i = 0; i < v.size(); ++i) load_input(r, v[i], i, named, *c);
    }
  }
  if (c->inputs.empty()) r.error(node, "logs needs at least one input");
  if (auto v = node["outputs"]) {
    if (r.is_seq(v, "logs.outputs")) {
      for (size_t i = 0; i < v.size(); ++i) load_output(r, v[i], i, *c);
    }
  }
  if (c->outputs.empty()) r.error(node, "logs needs at least one output");
  // Every output must match something, and every input must go somewhere.
  auto matches = [](const OutputConfig& o, const InputConfig& in) {
    for (const auto& m : o.match) {
      if (m == "*" || m == in.name || m == in.tag) return true;
    }
    return false;
  };
  int stdout_inputs = 0;
  for (size_t i = 0; i < c->inputs.size(); ++i) {
    const InputConfig& in = c->inputs[i];
    if (in.kind == InputConfig::Kind::kAppStdout && ++stdout_inputs > 1) {
      r.error(node["inputs"][i], "logs: only one input may read app_stdout");
    }
    bool routed = false;
    for (const auto& o : c->outputs) routed = routed || matches(o, in);
    if (!routed) r.error(node["inputs"][i], fmt::format("input '{}' matches no output", in.name));
  }
  for (size_t i = 0; i < c->outputs.size(); ++i) {
    bool used = false;
    for (const auto& in : c->inputs) used = used || matches(c->outputs[i], in);
    if (!used) {
      r.error(node["outputs"][i], fmt::format("output '{}' matches no input", c->outputs[i].name));
    }
  }
  return c;
}

void register_module() { module::register_kind({"logs", parse, nullptr}); }

}  // namespace sidecar::logship
