#include "acme/client.h"

#include <curl/curl.h>

#include <mutex>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/json.h"

namespace sidecar::acme {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxBody = 1 << 20;  // bytes; a chain is a few KiB
constexpr auto kRequestTimeout = std::chrono::seconds(30);
constexpr int kNonceRetries = 5;
constexpr const char* kUserAgent = "sidecar-acme/1 (libcurl)";

void init_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  HttpResponse* response;
  Interrupt* interrupt;
  bool too_large = false;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (t->response->body.size() + bytes > kMaxBody) {
    t->too_large = true;
    return 0;
  }
  t->response->body.append(data, bytes);
  return bytes;
}

std::string header_value(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || line[name.size()] != ':') return {};
  for (size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return {};
  }
  std::string_view v = line.substr(name.size() + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) {
    v.remove_suffix(1);
  }
  return std::string(v);
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string_view line(data, size * n);
  HttpResponse& r = *t->response;
  if (line.starts_with("HTTP/")) {  // a new response (after 100 Continue): start over
    r.nonce.clear();
    r.location.clear();
    r.retry_after.clear();
    r.content_type.clear();
  } else if (auto v = header_value(line, "replay-nonce"); !v.empty()) {
    r.nonce = v;
  } else if (auto v = header_value(line, "location"); !v.empty()) {
    r.location = v;
  } else if (auto v = header_value(line, "retry-after"); !v.empty()) {
    r.retry_after = v;
  } else if (auto v = header_value(line, "content-type"); !v.empty()) {
    r.content_type = v;
  }
  return size * n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Transfer*>(user)->interrupt->stopped() ? 1 : 0;
}

std::optional<std::chrono::seconds> retry_after_of(const HttpResponse& r) {
  if (r.retry_after.empty()) return std::nullopt;
  return parse_retry_after(r.retry_after, std::chrono::system_clock::now());
}

}  // namespace

Client::Client(std::string directory_url, std::string ca_file, Interrupt& interrupt)
    : directory_url_(std::move(directory_url)),
      ca_file_(std::move(ca_file)),
      interrupt_(interrupt) {
  init_curl();
  curl_ = curl_easy_init();
  if (curl_ == nullptr) throw std::runtime_error("curl_easy_init failed");
}

Client::~Client() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

void Client::set_account(PrivateKey key, std::string kid) {
  key_ = std::move(key);
  kid_ = std::move(kid);
}

HttpResponse Client::request(const char* method, const std::string& url, const std::string& body,
                             const char* accept) {
  if (interrupt_.stopped()) throw AcmeError("stopped");
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
  if (left.count() <= 0) throw AcmeError("the attempt ran out of time (acme.timeout)");
  const auto timeout = std::min<std::chrono::milliseconds>(left, kRequestTimeout);

  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  HttpResponse r;
  Transfer t{&r, &interrupt_};
  curl_slist* headers = nullptr;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(c, CURLOPT_USERAGENT, kUserAgent);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min<int64_t>(timeout.count(), 10'000)));
  if (!ca_file_.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file_.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  if (accept != nullptr)
    headers = curl_slist_append(headers, fmt::format("Accept: {}", accept).c_str());
  if (std::string_view(method) == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (std::string_view(method) == "POST") {
    headers = curl_slist_append(headers, "Content-Type: application/jose+json");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    if (interrupt_.stopped()) throw AcmeError("stopped");
    if (t.too_large) throw AcmeError(fmt::format("{} {}: answer larger than 1 MiB", method, url));
    throw AcmeError(fmt::format("{} {}: {}", method, url, curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  if (!r.nonce.empty()) nonce_ = r.nonce;
  return r;
}

void Client::throw_error(const HttpResponse& r, const std::string& what) {
  Problem p;
  parse_problem(r.body, p);
  const auto retry = retry_after_of(r);
  std::string msg = fmt::format("{}: HTTP {}", what, r.status);
  if (!p.empty()) msg += ": " + p.describe();
  if (retry) msg += fmt::format(" (Retry-After {}s)", retry->count());
  throw AcmeError(msg, std::move(p), static_cast<int>(r.status), retry);
}

const Directory& Client::directory() {
  if (directory_) return *directory_;
  HttpResponse r = request("GET", directory_url_, "", "application/json");
  if (r.status != 200) throw_error(r, "GET " + directory_url_);
  Directory d;
  std::string why;
  if (!parse_directory(r.body, d, why)) throw AcmeError(directory_url_ + ": " + why);
  directory_ = std::move(d);
  return *directory_;
}

std::string Client::take_nonce() {
  if (!nonce_.empty()) return std::exchange(nonce_, {});
  const std::string url = directory().new_nonce;
  HttpResponse r = request("HEAD", url, "", nullptr);
  if (r.status >= 400) throw_error(r, "HEAD " + url);
  if (r.nonce.empty()) throw AcmeError(url + " sent no Replay-Nonce");
  nonce_.clear();
  return r.nonce;
}

HttpResponse Client::post(const std::string& url, const std::string& payload, const char* accept) {
  for (int attempt = 0;; ++attempt) {
    const std::string header = protected_header(key_, kid_, take_nonce(), url);
    HttpResponse r = request("POST", url, sign_jws(key_, header, payload), accept);
    if (r.status < 400) return r;
    Problem p;
    if (parse_problem(r.body, p) && p.short_type() == "badNonce" && attempt < kNonceRetries) {
      spdlog::debug("acme: badNonce from {}, retrying with a fresh nonce", url);
      continue;  // the answer carried a fresh nonce
    }
    throw_error(r, "POST " + url);
  }
}

std::string Client::new_account(const std::string& contact, bool& created) {
  std::string payload = R"({"termsOfServiceAgreed":true)";
  if (!contact.empty()) {
    payload += ",\"contact\":[";
    core::append_json_string(payload, contact);
    payload += ']';
  }
  payload += '}';
  const std::string saved_kid = std::exchange(kid_, {});  // newAccount is signed with the JWK
  HttpResponse r;
  try {
    r = post(directory().new_account, payload);
  } catch (...) {
    kid_ = saved_kid;
    throw;
  }
  if (r.location.empty()) throw AcmeError("newAccount: no Location (account URL) in the answer");
  created = r.status == 201;
  kid_ = r.location;
  return kid_;
}

void Client::update_contact(const std::string& contact) {
  std::string payload = R"({"contact":[)";
  if (!contact.empty()) core::append_json_string(payload, contact);
  payload += "]}";
  post(kid_, payload);
}

Order Client::new_order(const std::vector<std::string>& domains, std::string& url) {
  std::string payload = R"({"identifiers":[)";
  for (size_t i = 0; i < domains.size(); ++i) {
    if (i > 0) payload += ',';
    payload += R"({"type":"dns","value":)";
    core::append_json_string(payload, domains[i]);
    payload += '}';
  }
  payload += "]}";
  HttpResponse r = post(directory().new_order, payload);
  Order o;
  std::string why;
  if (!parse_order(r.body, o, why)) throw AcmeError("newOrder: " + why);
  if (r.location.empty()) throw AcmeError("newOrder: no Location (order URL) in the answer");
  url = r.location;
  return o;
}

Order Client::get_order(const std::string& url, std::optional<std::chrono::seconds>& retry_after) {
  HttpResponse r = post(url, "");
  Order o;
  std::string why;
  if (!parse_order(r.body, o, why)) throw AcmeError(url + ": " + why);
  retry_after = retry_after_of(r);
  return o;
}

Authorization Client::get_authorization(const std::string& url,
                                        std::optional<std::chrono::seconds>& retry_after) {
  HttpResponse r = post(url, "");
  Authorization a;
  std::string why;
  if (!parse_authorization(r.body, a, why)) throw AcmeError(url + ": " + why);
  retry_after = retry_after_of(r);
  return a;
}

void Client::respond(const std::string& challenge_url) { post(challenge_url, "{}"); }

Order Client::finalize(const std::string& finalize_url, const std::string& csr_der,
                       std::optional<std::chrono::seconds>& retry_after) {
  HttpResponse r = post(finalize_url, fmt::format(R"({{"csr":"{}"}})", base64url(csr_der)));
  Order o;
  std::string why;
  if (!parse_order(r.body, o, why)) throw AcmeError("finalize: " + why);
  retry_after = retry_after_of(r);
  return o;
}

std::string Client::download(const std::string& certificate_url) {
  HttpResponse r = post(certificate_url, "", "application/pem-certificate-chain");
  if (count_pem_certificates(r.body) == 0) {
    throw AcmeError(certificate_url + ": the answer is not a PEM certificate chain");
  }
  return r.body;
}

}  // namespace sidecar::acme
