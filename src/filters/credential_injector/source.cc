#include "filters/credential_injector/source.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "core/base64.h"

namespace sidecar::filters::credential_injector {
namespace {

constexpr auto kFileCheckPeriod = std::chrono::seconds(1);
constexpr auto kRetryAfterFailure = std::chrono::seconds(1);
constexpr size_t kMaxFile = 64 * 1024;

std::string trim(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  return s;
}

bool printable(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return !s.empty();
}

// application/x-www-form-urlencoded (WHATWG URL, "urlencoded serializer").
std::string form_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '*' || c == '-' || c == '.' || c == '_') {
      out += c;
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

bool read_small_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::string data(kMaxFile + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > kMaxFile) return false;
  out = std::move(data);
  return true;
}

}  // namespace

Source::Source(const Config& config)
    : config_(config),
      fetch_ok_(*counter("sidecar_credential_injector_token_fetches_total",
                         "OAuth2 token requests of credential_injector, by result.",
                         {{"result", "ok"}})),
      fetch_failed_(*counter("sidecar_credential_injector_token_fetches_total",
                             "OAuth2 token requests of credential_injector, by result.",
                             {{"result", "error"}})) {
  if (config_.kind != Config::Kind::kOAuth2) read_file();
  if (config_.kind == Config::Kind::kOAuth2) why_ = "no token yet";
}

void Source::read_file() {
  checked_ = Clock::now();
  switch (version_.check(config_.path)) {
    case core::FileVersion::Check::kUnreadable:
      spdlog::error("credential_injector: cannot read {}", config_.path);
      [[fallthrough]];
    case core::FileVersion::Check::kStillUnreadable:
      value_.clear();
      why_ = "cannot read " + config_.path;
      return;
    case core::FileVersion::Check::kUnchanged:
      return;
    case core::FileVersion::Check::kChanged:
      break;
  }
  std::string text;
  if (!read_small_file(config_.path, text)) {
    value_.clear();
    why_ = "cannot read " + config_.path + " (or larger than 64 KiB)";
    spdlog::error("credential_injector: {}", why_);
    return;
  }
  text = trim(std::move(text));
  if (!printable(text)) {
    value_.clear();
    why_ = config_.path + " is empty or holds control characters";
    spdlog::error("credential_injector: {}", why_);
    return;
  }
  switch (config_.kind) {
    case Config::Kind::kBearerFile:
      value_ = "Bearer " + text;
      break;
    case Config::Kind::kBasicFile:
      if (text.find(':') == std::string::npos) {
        value_.clear();
        why_ = config_.path + " must hold user:password";
        spdlog::error("credential_injector: {}", why_);
        return;
      }
      value_ = "Basic " + core::base64_encode(text);
      break;
    default:
      value_ = text;
  }
  why_.clear();
  spdlog::info("credential_injector: read the credential from {}", config_.path);
}

std::string Source::value(std::string& why) {
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  if (config_.kind == Config::Kind::kOAuth2) {
    if (now >= use_until_ && why_.empty()) why_ = "the token expired";
    if (now >= use_until_) {
      why = why_;
      return {};
    }
  } else if (now - checked_ >= kFileCheckPeriod) {
    read_file();
  }
  why = why_;
  return value_;
}

bool Source::wait(http::AsyncClient& client, boost::asio::io_context& io,
                  std::function<void()> wake) {
  if (config_.kind != Config::Kind::kOAuth2) return false;
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  if (now < use_until_) {
    if (now >= refresh_at_ && !fetching_ && now >= retry_after_) {
      fetching_ = true;
      start_fetch(client, io);
    }
    return false;
  }
  if (!fetching_ && now < retry_after_) return false;  // failed just now: answer at once
  waiters_.push_back({&io, std::move(wake)});
  if (!fetching_) {
    fetching_ = true;
    start_fetch(client, io);
  }
  return true;
}

void Source::start_fetch(http::AsyncClient& client, boost::asio::io_context& io) {
  ++fetches_;
  std::string secret;
  if (!read_small_file(config_.client_secret_file, secret)) {
    // Answer through the same path as a failed request, outside the lock.
    http::ClientResponse failed;
    failed.error = "cannot read client_secret_file " + config_.client_secret_file;
    boost::asio::post(io, [self = shared_from_this(), failed] { self->fetched(failed); });
    return;
  }
  secret = trim(std::move(secret));
  http::ClientRequest r;
  r.method = "POST";
  r.path = config_.token_path;
  r.authority = config_.token_host;
  r.timeout = config_.token_timeout;
  r.headers.emplace_back("content-type", "application/x-www-form-urlencoded");
  r.headers.emplace_back("accept", "application/json");
  r.body = "grant_type=client_credentials&client_id=" + form_encode(config_.client_id) +
           "&client_secret=" + form_encode(secret);
  if (!config_.scopes.empty()) {
    std::string scope;
    for (const std::string& s : config_.scopes) scope += (scope.empty() ? "" : " ") + s;
    r.body += "&scope=" + form_encode(scope);
  }
  if (!config_.audience.empty()) r.body += "&audience=" + form_encode(config_.audience);
  client.send(
      config_.token_cluster, std::move(r),
      [self = shared_from_this()](http::ClientResponse response) { self->fetched(response); });
}

void Source::fetched(const http::ClientResponse& response) {
  std::string token, why;
  int64_t expires_in = 3600;  // RFC 6749 5.1: RECOMMENDED; an hour when absent
  if (response.status == 0) {
    why = response.error;
  } else if (response.status != 200) {
    why = fmt::format("the token endpoint answered {}", response.status);
  } else {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(response.body, ec);
    const boost::json::object* o = !ec && v.is_object() ? &v.get_object() : nullptr;
    const boost::json::value* t = o ? o->if_contains("access_token") : nullptr;
    const boost::json::value* e = o ? o->if_contains("expires_in") : nullptr;
    if (t == nullptr || !t->is_string() || !printable(t->get_string())) {
      why = "the token endpoint's answer has no access_token";
    } else {
      token = std::string(t->get_string());
      if (e != nullptr && e->is_int64()) expires_in = e->get_int64();
      if (e != nullptr && e->is_uint64()) expires_in = static_cast<int64_t>(e->get_uint64());
      if (e != nullptr && e->is_double()) expires_in = static_cast<int64_t>(e->get_double());
      expires_in = std::clamp<int64_t>(expires_in, 1, 365LL * 24 * 3600);
    }
  }
  std::vector<Waiter> waiters;
  {
    std::lock_guard lock(mutex_);
    fetching_ = false;
    const auto now = Clock::now();
    if (!token.empty()) {
      value_ = "Bearer " + token;
      why_.clear();
      const auto life = std::chrono::seconds(expires_in);
      use_until_ = now + (life > std::chrono::seconds(20) ? life - std::chrono::seconds(10) : life);
      refresh_at_ = now + life * 8 / 10;
    } else {
      why_ = why;
      retry_after_ = now + kRetryAfterFailure;
    }
    waiters.swap(waiters_);
  }
  if (!token.empty()) {
    fetch_ok_.add();
  } else {
    fetch_failed_.add();
    spdlog::warn("credential_injector: token request to {} failed: {}", config_.token_host, why);
  }
  for (Waiter& w : waiters) boost::asio::post(*w.io, std::move(w.wake));
}

uint64_t Source::fetches() const {
  std::lock_guard lock(mutex_);
  return fetches_;
}

}  // namespace sidecar::filters::credential_injector
