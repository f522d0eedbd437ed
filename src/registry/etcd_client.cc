#include "registry/etcd_client.h"

#include <curl/curl.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace sidecar::registry {
namespace {

constexpr size_t kMaxBody = 16 << 20;  // bytes; a range of a few thousand instances
constexpr size_t kMaxLine = 16 << 20;  // bytes; one watch message

void init_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Sink {
  std::string* body = nullptr;
  const std::function<bool(std::string_view)>* on_line = nullptr;
  const std::atomic<bool>* stop = nullptr;
  bool too_large = false;
  bool ended_by_reader = false;
};

size_t on_data(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  const size_t bytes = size * n;
  if (s->body->size() + bytes > (s->on_line ? kMaxLine : kMaxBody)) {
    s->too_large = true;
    return 0;
  }
  s->body->append(data, bytes);
  if (s->on_line == nullptr) return bytes;
  size_t start = 0, nl;
  while ((nl = s->body->find('\n', start)) != std::string::npos) {
    std::string_view line(s->body->data() + start, nl - start);
    start = nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    if (!(*s->on_line)(line)) {
      s->ended_by_reader = true;
      return 0;
    }
  }
  s->body->erase(0, start);
  return bytes;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Sink*>(user)->stop->load() ? 1 : 0;
}

// Sends the request set up on `c` (JSON, with etcd's auth token when there
// is one) into `sink`.
CURLcode perform_json(CURL* c, Sink& sink, const std::string& token) {
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &sink);
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  std::string auth;
  if (!token.empty()) {
    auth = "Authorization: " + token;
    headers = curl_slist_append(headers, auth.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  return rc;
}

bool invalid_token(const EtcdClient::Reply& r) {
  return r.answered && (r.status == 401 || r.error.code == etcd::kUnauthenticated ||
                        r.error.message.find("auth token") != std::string::npos);
}

}  // namespace

std::string EtcdClient::Reply::describe() const {
  if (!answered) return transport_error;
  if (!error.message.empty()) return fmt::format("HTTP {}: {}", status, error.message);
  return fmt::format("HTTP {}", status);
}

EtcdClient::EtcdClient(EtcdSettings settings, const std::atomic<bool>& stop)
    : settings_(std::move(settings)), stop_(stop) {
  init_curl();
  curl_ = curl_easy_init();
  if (curl_ == nullptr) throw std::runtime_error("curl_easy_init failed");
}

EtcdClient::~EtcdClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

std::string EtcdClient::endpoint() const {
  std::lock_guard lock(mutex_);
  return settings_.endpoints.empty() ? std::string() : settings_.endpoints[current_];
}

void EtcdClient::setup(const std::string& url, const std::string& body,
                       std::chrono::milliseconds timeout) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, long(body.size()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, long(timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   long(std::min<int64_t>(timeout.count(), settings_.timeout.count())));
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "sidecar-registry/1 (libcurl)");
  if (!settings_.tls.ca.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, settings_.tls.ca.c_str());
  if (!settings_.tls.cert.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, settings_.tls.cert.c_str());
    curl_easy_setopt(c, CURLOPT_SSLKEY, settings_.tls.key.c_str());
  }
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
}

EtcdClient::Reply EtcdClient::post_once(const std::string& base, std::string_view path,
                                        const std::string& body) {
  Reply r;
  const std::string url = base + std::string(path);
  setup(url, body, settings_.timeout);
  CURL* c = static_cast<CURL*>(curl_);
  Sink sink{&r.body, nullptr, &stop_};
  const CURLcode rc = perform_json(c, sink, token_);
  if (rc != CURLE_OK) {
    r.transport_error =
        fmt::format("{}: {}", url, sink.too_large ? "answer too large" : curl_easy_strerror(rc));
    return r;
  }
  r.answered = true;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  if (r.status != 200) etcd::parse_error(r.body, r.error);
  return r;
}

bool EtcdClient::authenticate(const std::string& base, std::string& why) {
  token_.clear();
  Reply r = post_once(base, "/v3/auth/authenticate",
                      etcd::authenticate_body(settings_.username, settings_.password));
  if (!r.ok()) {
    why = "authenticate: " + r.describe();
    return false;
  }
  etcd::Error e;
  if (!etcd::parse_token(r.body, token_, e)) {
    why = "authenticate: no token in the answer";
    return false;
  }
  ++authentications_;
  return true;
}

EtcdClient::Reply EtcdClient::call(std::string_view path, const std::string& body) {
  Reply last;
  const size_t n = settings_.endpoints.size();
  size_t start;
  {
    std::lock_guard lock(mutex_);
    start = current_;
  }
  for (size_t attempt = 0; attempt < n && !stop_.load(); ++attempt) {
    const size_t index = (start + attempt) % n;
    const std::string& base = settings_.endpoints[index];
    if (!settings_.username.empty() && token_.empty()) {
      std::string why;
      if (!authenticate(base, why)) {
        last = {};
        last.transport_error = base + ": " + why;
        continue;
      }
    }
    last = post_once(base, path, body);
    if (invalid_token(last) && !settings_.username.empty()) {
      // Tokens expire (simple tokens after 5 minutes unused, JWTs by their
      // TTL) and die with a restart of etcd: get a new one and try again.
      std::string why;
      if (!authenticate(base, why)) {
        last = {};
        last.transport_error = base + ": " + why;
        continue;
      }
      last = post_once(base, path, body);
    }
    if (last.answered && last.status < 500) {
      std::lock_guard lock(mutex_);
      current_ = index;
      return last;
    }
    token_.clear();  // the next endpoint may not know it
  }
  if (!last.answered && last.transport_error.empty()) last.transport_error = "stopped";
  return last;
}

bool EtcdClient::stream(std::string_view path, const std::string& body,
                        const std::function<bool(std::string_view)>& on_line,
                        std::chrono::milliseconds max_duration, std::string& error) {
  const size_t n = settings_.endpoints.size();
  size_t index;
  {
    std::lock_guard lock(mutex_);
    index = current_ % n;
  }
  const std::string& base = settings_.endpoints[index];
  auto fail_over = [&] {
    std::lock_guard lock(mutex_);
    if (current_ == index) current_ = (index + 1) % n;
    token_.clear();
  };
  if (!settings_.username.empty() && token_.empty() && !authenticate(base, error)) {
    fail_over();
    return false;
  }
  for (int round = 0; round < 2; ++round) {
    std::string buffer;
    setup(base + std::string(path), body, max_duration);
    CURL* c = static_cast<CURL*>(curl_);
    // The first line tells whether the token was accepted.
    bool unauthenticated = false;
    const std::function<bool(std::string_view)> check = [&](std::string_view line) {
      etcd::Error e;
      if (etcd::parse_error(line, e) &&
          (e.code == etcd::kUnauthenticated || e.message.find("auth token") != std::string::npos)) {
        unauthenticated = true;
        return false;
      }
      return on_line(line);
    };
    Sink sink{&buffer, &check, &stop_};
    const CURLcode rc = perform_json(c, sink, token_);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (unauthenticated && round == 0 && !settings_.username.empty()) {
      if (!authenticate(base, error)) {
        fail_over();
        return false;
      }
      continue;
    }
    if (sink.ended_by_reader || stop_.load() || (rc == CURLE_OPERATION_TIMEDOUT && status == 200)) {
      return !unauthenticated;  // ended here, or max_duration passed on a live stream
    }
    if (rc != CURLE_OK) {
      error = fmt::format("{}{}: {}", base, path,
                          sink.too_large ? "message too large" : curl_easy_strerror(rc));
      fail_over();
      return false;
    }
    if (status != 200) {
      error = fmt::format("{}{}: HTTP {}", base, path, status);
      fail_over();
      return false;
    }
    return true;  // the server ended the stream
  }
  error = "unauthenticated";
  return false;
}

}  // namespace sidecar::registry
