#include "filters/jwt_authn/filter.h"

#include <chrono>
#include <functional>
#include <unordered_map>

#include <boost/json/serialize.hpp>

#include "crypto/crypto.h"
#include "filters/query.h"
#include "http/http1_parser.h"

namespace sidecar::filters::jwt_authn {
namespace {

constexpr size_t kStatuses = static_cast<size_t>(JwtStatus::kRequirementFailed) + 1;

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  }
  return true;
}

std::string_view path_only(std::string_view path) { return path.substr(0, path.find('?')); }

// A realm value safe inside a quoted-string.
std::string realm_of(std::string_view authority) {
  std::string out;
  for (char c : authority) {
    if (c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

bool audience_allowed(const std::vector<std::string>& token_aud,
                      const std::vector<std::string>& allowed) {
  for (const std::string& a : token_aud) {
    for (const std::string& b : allowed) {
      if (a == b) return true;
    }
  }
  return false;
}

// Verified tokens, per worker thread (no lock, no sharing): a token whose
// signature verified is not verified again for up to kCacheSeconds, nor
// past its exp. Keyed by the provider's KeySource id and the token, so a
// new config (new KeySources) starts empty. Envoy's jwt_cache_config does
// the same; see docs/security.md for the measured effect.
constexpr int64_t kCacheSeconds = 300;
constexpr size_t kCacheEntries = 1024;

struct CacheEntry {
  std::shared_ptr<const Jwt> jwt;
  int64_t until = 0;
};

std::unordered_map<std::string, CacheEntry>& cache() {
  thread_local std::unordered_map<std::string, CacheEntry> entries;
  return entries;
}

std::string cache_key(uint64_t source, std::string_view token) {
  std::string key = std::to_string(source);
  key += ':';
  key += token;
  return key;
}

std::shared_ptr<const Jwt> cache_lookup(uint64_t source, std::string_view token, int64_t now) {
  auto& c = cache();
  if (c.empty()) return nullptr;
  auto it = c.find(cache_key(source, token));
  if (it == c.end()) return nullptr;
  if (it->second.until < now) {
    c.erase(it);
    return nullptr;
  }
  return it->second.jwt;
}

void cache_insert(uint64_t source, std::string_view token, std::shared_ptr<const Jwt> jwt,
                  int64_t now, int64_t skew) {
  auto& c = cache();
  if (c.size() >= kCacheEntries) c.clear();  // simple bound; a working set this large re-fills
  int64_t until = now + kCacheSeconds;
  if (jwt->exp && *jwt->exp < INT64_MAX - skew) until = std::min(until, *jwt->exp + skew);
  c[cache_key(source, token)] = {std::move(jwt), until};
}

}  // namespace

Factory::Factory(std::shared_ptr<const Config> c)
    : config(std::move(c)),
      allowed(*counter("sidecar_jwt_authn_allowed_total",
                       "Requests that passed jwt_authn's requirement.")) {
  crypto::library();  // loaded here, on the main thread, not on a worker's first request
  for (const Provider& p : config->providers) sources.push_back(std::make_shared<KeySource>(p));
  for (size_t i = 0; i < kStatuses; ++i) {
    denied.push_back(counter("sidecar_jwt_authn_denied_total",
                             "Requests refused by jwt_authn, by reason.",
                             {{"reason", std::string(to_string(static_cast<JwtStatus>(i)))}}));
  }
}

std::unique_ptr<http::HttpFilter> Factory::create() const {
  return std::make_unique<Filter>(shared_from_this());
}

Filter::~Filter() { on_stream_end(); }

void Filter::on_stream_end() {
  if (alive_) *alive_ = false;
  alive_.reset();
  requirement_ = nullptr;
  tokens_.clear();
  waited_ = false;
}

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  const Config& config = *factory_->config;
  requirement_ = nullptr;
  if (const auto* route = static_cast<const Config*>(cb.route_config("jwt_authn"))) {
    if (route->disabled) return http::FilterStatus::kContinue;
    requirement_ = config.requirement(route->requirement_name);
    if (requirement_ == nullptr) {
      // The loader's validator refuses such configs; fail closed anyway.
      cb.set_response_detail("jwt_authn_unknown_requirement");
      cb.send_local_reply(403, "jwt_authn: unknown requirement_name\n");
      return http::FilterStatus::kStopIteration;
    }
  } else {
    const std::string_view path = path_only(cb.path());
    for (const Rule& r : config.rules) {
      if (r.prefix.empty() ? path == r.path : path.starts_with(r.prefix)) {
        if (r.has_requires) requirement_ = &r.requirement;
        break;
      }
    }
  }
  if (requirement_ == nullptr) return http::FilterStatus::kContinue;
  // Headers the filter owns: never what the client sent.
  for (const Provider& p : config.providers) {
    for (const auto& [claim, header] : p.claim_to_headers) cb.remove_request_header(header);
    if (!p.forward_payload_header.empty()) cb.remove_request_header(p.forward_payload_header);
  }
  tokens_.assign(config.providers.size(), Token());
  waited_ = false;
  return run(cb);
}

http::FilterStatus Filter::run(http::FilterCallbacks& cb) {
  std::vector<bool> used(tokens_.size(), false);
  collect_providers(*requirement_, used);
  bool pending = false;
  for (size_t i = 0; i < used.size(); ++i) {
    if (used[i] && evaluate_provider(i, cb) == Step::kPending) pending = true;
  }
  if (pending) return http::FilterStatus::kStopIteration;
  const JwtStatus status = check(*requirement_);
  if (status != JwtStatus::kOk) {
    refuse(cb, status);
    return http::FilterStatus::kStopIteration;
  }
  accept(cb);
  return http::FilterStatus::kContinue;
}

void Filter::collect_providers(const Requirement& r, std::vector<bool>& used) const {
  switch (r.kind) {
    case Requirement::Kind::kProvider:
      used[r.provider] = true;
      break;
    case Requirement::Kind::kAny:
    case Requirement::Kind::kAll:
      for (const Requirement& c : r.children) collect_providers(c, used);
      break;
    case Requirement::Kind::kAllowMissing:
    case Requirement::Kind::kAllowMissingOrFailed:
      used.assign(used.size(), true);  // any token present is verified
      break;
  }
}

void Filter::extract(const Provider& p, http::FilterCallbacks& cb, Token& t,
                     std::string_view& raw) const {
  const http::RequestHead& head = cb.request();
  for (size_t i = 0; i < p.from_headers.size(); ++i) {
    const FromHeader& h = p.from_headers[i];
    const http::HeaderField* f = head.find(h.name);
    if (f == nullptr || !iequals_prefix(f->value, h.value_prefix)) continue;
    raw = http::trim_ows(f->value.substr(h.value_prefix.size()));
    t.header = static_cast<int>(i);
    return;
  }
  for (const std::string& name : p.from_params) {
    if (auto v = query_param(cb.path(), name)) {
      raw = *v;
      t.param = name;
      return;
    }
  }
  for (const std::string& name : p.from_cookies) {
    for (const http::HeaderField& f : head.headers) {
      if (!iequals_prefix(f.name, "cookie") || f.name.size() != 6) continue;
      std::string_view rest = f.value;
      while (!rest.empty()) {
        const size_t semi = rest.find(';');
        std::string_view pair = http::trim_ows(rest.substr(0, semi));
        const size_t eq = pair.find('=');
        if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
          raw = pair.substr(eq + 1);
          t.from_cookie = true;
          return;
        }
        if (semi == std::string_view::npos) break;
        rest.remove_prefix(semi + 1);
      }
    }
  }
}

Filter::Step Filter::evaluate_provider(size_t index, http::FilterCallbacks& cb) {
  Token& t = tokens_[index];
  if (t.evaluated) return Step::kDone;
  const Provider& p = factory_->config->providers[index];
  std::string_view raw;
  t = Token();
  extract(p, cb, t, raw);
  if (t.header < 0 && t.param.empty() && !t.from_cookie) {
    t.evaluated = true;
    t.status = JwtStatus::kMissing;
    return Step::kDone;
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  KeySource& source = *factory_->sources[index];
  if (auto hit = cache_lookup(source.id(), raw, now)) {
    t.jwt = std::move(hit);
    t.status = check_time(*t.jwt, now, p.clock_skew_seconds);
    t.evaluated = true;
    return Step::kDone;
  }
  auto jwt = std::make_shared<Jwt>();
  t.jwt = jwt;
  t.status = parse_jwt(raw, *jwt);
  if (t.status == JwtStatus::kOk && !supported_alg(t.jwt->alg))
    t.status = JwtStatus::kAlgNotAllowed;
  if (t.status == JwtStatus::kOk && !p.issuer.empty() && t.jwt->iss != p.issuer)
    t.status = JwtStatus::kBadIssuer;
  if (t.status == JwtStatus::kOk && !p.audiences.empty() &&
      !audience_allowed(t.jwt->aud, p.audiences))
    t.status = JwtStatus::kBadAudience;
  if (t.status == JwtStatus::kOk) t.status = check_time(*t.jwt, now, p.clock_skew_seconds);
  if (t.status == JwtStatus::kOk) {
    std::shared_ptr<const Jwks> keys = source.keys();
    JwtStatus sig = keys ? verify_signature(*t.jwt, *keys) : JwtStatus::kNoKeys;
    const auto need = source.need(keys, sig == JwtStatus::kUnknownKid);
    if (need == KeySource::Need::kWait && !waited_) {
      if (!alive_) alive_ = std::make_shared<bool>(true);
      source.fetch(cb.http_client(), cb.io(), [this, &cb, alive = alive_] {
        if (!*alive) return;
        waited_ = true;
        for (Token& tok : tokens_) tok.evaluated = false;
        if (run(cb) == http::FilterStatus::kContinue) cb.continue_request();
      });
      return Step::kPending;
    }
    if (need == KeySource::Need::kRefreshInBackground)
      source.fetch(cb.http_client(), cb.io(), nullptr);
    t.status = sig;
    if (sig == JwtStatus::kOk) cache_insert(source.id(), raw, jwt, now, p.clock_skew_seconds);
  }
  t.evaluated = true;
  return Step::kDone;
}

JwtStatus Filter::check(const Requirement& r) const {
  switch (r.kind) {
    case Requirement::Kind::kProvider: {
      const Token& t = tokens_[r.provider];
      if (t.status == JwtStatus::kOk && !r.audiences.empty() &&
          !audience_allowed(t.jwt->aud, r.audiences)) {
        return JwtStatus::kRequirementFailed;
      }
      return t.status;
    }
    case Requirement::Kind::kAny: {
      JwtStatus first = JwtStatus::kMissing;
      for (const Requirement& c : r.children) {
        const JwtStatus s = check(c);
        if (s == JwtStatus::kOk) return s;
        if (first == JwtStatus::kMissing) first = s;
      }
      return first;
    }
    case Requirement::Kind::kAll:
      for (const Requirement& c : r.children) {
        const JwtStatus s = check(c);
        if (s != JwtStatus::kOk) return s;
      }
      return JwtStatus::kOk;
    case Requirement::Kind::kAllowMissing: {
      // No token anywhere passes; a token that is there must verify somewhere.
      JwtStatus failure = JwtStatus::kOk;
      for (const Token& t : tokens_) {
        if (t.status == JwtStatus::kOk) return JwtStatus::kOk;
        if (t.status != JwtStatus::kMissing && failure == JwtStatus::kOk) failure = t.status;
      }
      return failure;
    }
    case Requirement::Kind::kAllowMissingOrFailed:
      return JwtStatus::kOk;
  }
  return JwtStatus::kMalformed;
}

void Filter::accept(http::FilterCallbacks& cb) {
  factory_->allowed.add();
  const Config& config = *factory_->config;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const Token& t = tokens_[i];
    const Provider& p = config.providers[i];
    if (t.status == JwtStatus::kMissing) continue;
    if (!p.forward) {
      if (t.header >= 0)
        cb.remove_request_header(p.from_headers[static_cast<size_t>(t.header)].name);
      if (!t.param.empty()) cb.set_request_path(without_param(cb.path(), t.param));
    }
    if (t.status != JwtStatus::kOk) continue;
    for (const auto& [claim, header] : p.claim_to_headers) {
      const boost::json::value* v = find_claim(t.jwt->payload, claim);
      if (v == nullptr) continue;
      std::string value;
      for (const std::string& s : claim_strings(*v)) {
        if (!value.empty()) value += ',';
        value += s;
      }
      // A claim with a line break must not split the head.
      bool safe = !value.empty();
      for (char c : value) safe = safe && (static_cast<unsigned char>(c) >= 0x20 || c == '\t');
      if (safe) cb.add_request_header(header, value);
    }
    if (!p.forward_payload_header.empty())
      cb.add_request_header(p.forward_payload_header, t.jwt->payload_b64);
    if (!cb.metadata("jwt_authn.payload")) {
      cb.set_metadata("jwt_authn.payload", t.jwt->payload_json);
      cb.set_metadata("jwt_authn.principal", t.jwt->iss + "/" + t.jwt->sub);
      cb.set_metadata("jwt_authn.provider", p.name);
    }
  }
}

void Filter::refuse(http::FilterCallbacks& cb, JwtStatus status) {
  factory_->denied[static_cast<size_t>(status)]->add();
  cb.set_response_detail(std::string("jwt_authn_") + std::string(to_string(status)));
  http::LocalResponse r;
  r.headers.emplace_back("content-type", "text/plain");
  if (status == JwtStatus::kRequirementFailed) {
    r.status = 403;
    r.body = "Audiences in Jwt are not allowed\n";
  } else {
    r.status = 401;
    std::string challenge = "Bearer realm=\"" + realm_of(cb.authority()) + "\"";
    // RFC 6750 3.1: no error code when the request had no credentials.
    if (status != JwtStatus::kMissing) challenge += ", error=\"invalid_token\"";
    r.headers.emplace_back("www-authenticate", challenge);
    r.body = status == JwtStatus::kMissing
                 ? "Jwt is missing\n"
                 : "Jwt verification fails: " + std::string(to_string(status)) + "\n";
  }
  cb.send_response(std::move(r));
}

}  // namespace sidecar::filters::jwt_authn
