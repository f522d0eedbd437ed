#include "acme/manager.h"

#include <pthread.h>

#include <algorithm>
#include <random>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "tls/certificate.h"

namespace sidecar::acme {
namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::seconds;

double to_seconds(SystemTime t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

double now_seconds() { return to_seconds(std::chrono::system_clock::now()); }

std::string rfc3339(SystemTime t) {
  const time_t s = std::chrono::system_clock::to_time_t(t);
  struct tm tm {};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

double uniform() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

std::string human(Duration d) {
  const int64_t s = std::chrono::duration_cast<seconds>(d).count();
  if (s < 120) return fmt::format("{:.1f}s", static_cast<double>(d.count()) / 1000);
  if (s < 7200) return fmt::format("{}m", s / 60);
  return fmt::format("{}h", s / 3600);
}

// A token goes into a URL path: the base64url alphabet only [RFC 8555 8.1].
bool valid_token(const std::string& t) {
  if (t.empty() || t.size() > 256) return false;
  return std::all_of(t.begin(), t.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

// Polls wait for Retry-After, else 0.5 s doubling to 5 s; never past the
// attempt's deadline (the next request fails then).
Duration poll_wait(Duration& backoff, std::optional<seconds> retry_after) {
  Duration d = backoff;
  backoff = std::min<Duration>(backoff * 2, std::chrono::seconds(5));
  if (retry_after) d = std::max<Duration>(*retry_after, Duration(100));
  return d;
}

}  // namespace

Manager::Manager(AcmeConfig config, module::Host& host)
    : config_(std::move(config)), host_(host), storage_(config_.storage) {}

Manager::~Manager() { stop(); }

void Manager::start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "acme");
    run();
  });
}

void Manager::stop() {
  interrupt_.stop();
  if (thread_.joinable()) thread_.join();
}

void Manager::renew_now() { interrupt_.trigger(); }

AcmeStatus Manager::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

bool Manager::due() const {
  return !have_certificate_ || reissue_ || std::chrono::system_clock::now() >= renew_at_;
}

void Manager::run() {
  load_stored();
  Steady::time_point next_try{};    // backoff after a failure
  Steady::time_point hold_until{};  // the server's Retry-After: not even renew_now() goes earlier
  uint32_t failures = 0;
  while (!interrupt_.stopped()) {
    const auto now = Steady::now();
    if (now < hold_until) {
      interrupt_.sleep_for(std::chrono::duration_cast<Duration>(hold_until - now));
      continue;
    }
    const bool forced = interrupt_.take_trigger();
    if (!forced && now < next_try) {
      interrupt_.wait_for(std::chrono::duration_cast<Duration>(next_try - now));
      continue;
    }
    if (!forced && !due()) {
      const auto left =
          std::chrono::duration_cast<Duration>(renew_at_ - std::chrono::system_clock::now());
      // Wake up at least hourly: the wall clock may jump (suspend, NTP).
      interrupt_.wait_for(std::clamp<Duration>(left, Duration(1), std::chrono::hours(1)));
      continue;
    }
    const bool renewal = have_certificate_;
    update([](AcmeStatus& s) { s.state = "obtaining"; });
    std::string error;
    bool rate_limited = false;
    std::optional<seconds> retry_after;
    try {
      obtain();
    } catch (const AcmeError& e) {
      error = e.what();
      retry_after = e.retry_after();
      rate_limited = e.is("rateLimited") || e.status() == 429;
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (interrupt_.stopped()) break;
    interrupt_.take_trigger();  // asked during this attempt: it is the answer
    if (error.empty()) {
      failures = 0;
      next_try = {};
      update([&](AcmeStatus& s) {
        ++(renewal ? s.renewals : s.issuances);
        s.consecutive_failures = 0;
        s.last_error.clear();
        s.last_success_time = now_seconds();
        s.next_attempt = 0;
        s.state = "valid";
      });
      continue;
    }
    ++failures;
    if (client_) client_->forget_directory();
    const Duration delay =
        retry_delay(failures, config_.retry_base, config_.retry_max, uniform(), retry_after);
    next_try = Steady::now() + delay;
    if (retry_after) hold_until = Steady::now() + *retry_after;
    spdlog::error("acme: {} for {} failed: {}; next attempt in {}",
                  renewal ? "renewing the certificate" : "obtaining a certificate",
                  fmt::join(config_.domains, ", "), error, human(delay));
    update([&](AcmeStatus& s) {
      ++(renewal ? s.renewal_failures : s.issuance_failures);
      if (rate_limited) ++s.rate_limited;
      s.consecutive_failures = failures;
      s.last_error = error;
      s.next_attempt = now_seconds() + std::chrono::duration<double>(delay).count();
      s.state = "retrying";
    });
  }
  update([](AcmeStatus& s) { s.state = "stopped"; });
}

void Manager::load_stored() {
  std::optional<StoredCertificate> c;
  try {
    storage_.prepare();
    c = storage_.certificate();
  } catch (const std::exception& e) {
    spdlog::error("acme: storage {}: {}", config_.storage, e.what());
    return;
  }
  if (!c) {
    spdlog::info("acme: no certificate in {} yet; obtaining one for {}", config_.storage,
                 fmt::join(config_.domains, ", "));
    return;
  }
  try {
    serve(*c, "storage");
  } catch (const std::exception& e) {
    spdlog::warn("acme: the stored certificate {} is not usable ({}); obtaining a new one", c->path,
                 e.what());
    return;
  }
  const std::set<std::string> want(config_.domains.begin(), config_.domains.end());
  const std::set<std::string> have(c->domains.begin(), c->domains.end());
  if (c->directory != config_.directory) {
    reissue_ = true;
    spdlog::info("acme: the stored certificate is from {}, not {}: obtaining a new one",
                 c->directory, config_.directory);
  } else if (want != have) {
    reissue_ = true;
    spdlog::info("acme: the stored certificate is for {}, not {}: obtaining a new one",
                 fmt::join(c->domains, ", "), fmt::join(config_.domains, ", "));
  }
}

void Manager::serve(const StoredCertificate& c, const std::string& from) {
  // Checks the pair (matching key, not expired) before anything is served.
  const auto pair = tls::KeyPair::from_pem(c.cert_pem, c.key_pem, c.path + "/cert.pem");
  const tls::CertificateInfo& info = pair->info();
  host_.provide_certificate(config_.listener, c.cert_pem, c.key_pem, "acme");
  have_certificate_ = true;
  reissue_ = false;
  renew_at_ = renewal_time(info.not_before, info.not_after, config_.renew_before, uniform());
  const auto lifetime = seconds(info.not_after - info.not_before);
  if (config_.renew_before >= lifetime && !std::exchange(warned_lifetime_, true)) {
    spdlog::warn(
        "acme: renew_before ({}) is not shorter than the certificate's lifetime ({}): "
        "renewing at 2/3 of the lifetime",
        human(config_.renew_before), human(lifetime));
  }
  spdlog::info(
      "acme: serving certificate serial {} for {} on listener {} ({}), valid until {}; renewal "
      "at {}",
      info.serial, fmt::join(info.dns_sans, ", "), config_.listener,
      from == "storage" ? "stored in " + c.path : "new, stored in " + c.path,
      rfc3339(SystemTime(seconds(info.not_after))), rfc3339(renew_at_));
  update([&](AcmeStatus& s) {
    s.serial = info.serial;
    s.not_before = info.not_before;
    s.not_after = info.not_after;
    s.certificate_path = c.path;
    s.certificate_from = from;
    s.next_renewal = to_seconds(renew_at_);
    if (s.state == "starting") s.state = "valid";
  });
}

void Manager::obtain() {
  if (!account_key_) {
    storage_.prepare();
    bool created = false;
    account_key_ = storage_.account_key(created);
    thumbprint_ = jwk_thumbprint(account_key_);
    if (created) spdlog::info("acme: new account key {}/account.key", config_.storage);
  }
  if (!client_) {
    client_ = std::make_unique<Client>(config_.directory, config_.ca, interrupt_);
    client_->set_account(account_key_, "");
  }
  client_->set_deadline(Steady::now() + config_.timeout);
  try {
    ensure_account();
    order();
  } catch (const AcmeError& e) {
    if (!e.is("accountDoesNotExist")) throw;
    // The server forgot the account (a test server restarted, or it was
    // deleted): register the same key again, once.
    spdlog::warn("acme: {} does not know account {}; registering again", config_.directory,
                 client_->kid());
    storage_.forget_account();
    client_->set_account(account_key_, "");
    ensure_account();
    order();
  }
}

void Manager::ensure_account() {
  if (!client_->kid().empty()) return;
  const Directory& dir = client_->directory();
  if (dir.external_account_required) {
    throw AcmeError(config_.directory +
                    " requires external account binding, which sidecar does not support");
  }
  const std::string contact = config_.email.empty() ? "" : "mailto:" + config_.email;
  if (auto stored = storage_.account(); stored && stored->directory == config_.directory) {
    client_->set_account(account_key_, stored->url);
    if (stored->contact != contact) {
      client_->update_contact(contact);
      storage_.save_account({config_.directory, stored->url, contact});
      spdlog::info("acme: account {} contact set to '{}'", stored->url, contact);
    }
    spdlog::info("acme: using account {} (stored in {})", stored->url, config_.storage);
    update([&](AcmeStatus& s) { s.account_url = stored->url; });
    return;
  }
  if (!dir.terms_of_service.empty()) {
    spdlog::info("acme: agreeing to the terms of service of {}: {}", config_.directory,
                 dir.terms_of_service);
  }
  bool created = false;
  const std::string url = client_->new_account(contact, created);
  storage_.save_account({config_.directory, url, contact});
  spdlog::info("acme: account {} {}", url,
               created ? "registered" : "already existed for the stored key");
  update([&](AcmeStatus& s) {
    s.account_url = url;
    s.account_registered = true;
  });
}

// The tokens published during one order, withdrawn when it ends however it ends.
class Manager::Published {
 public:
  explicit Published(module::Host& host) : host_(host) {}
  ~Published() {
    for (const std::string& t : tokens_) host_.clear_acme_challenge(t);
  }
  void add(const std::string& token, const std::string& key_authorization) {
    host_.set_acme_challenge(token, key_authorization);
    tokens_.push_back(token);
  }

 private:
  module::Host& host_;
  std::vector<std::string> tokens_;
};

void Manager::order() {
  std::string url;
  Order o = client_->new_order(config_.domains, url);
  update([&](AcmeStatus& s) { s.order_url = url; });
  spdlog::info("acme: order {} for {}", url, fmt::join(config_.domains, ", "));
  std::optional<seconds> retry_after;
  if (o.status == "pending") {
    // Every challenge is answered before any is waited for: the server
    // validates them in parallel.
    Published published(host_);
    std::vector<std::string> waiting;
    for (const std::string& a : o.authorizations) {
      if (start_authorization(a, published)) waiting.push_back(a);
    }
    for (const std::string& a : waiting) finish_authorization(a);
    o = client_->get_order(url, retry_after);
  }
  o = poll_order(url, std::move(o), "pending", retry_after);
  if (o.status != "ready") {
    throw AcmeError(fmt::format("order {} is {}{}", url, o.status,
                                o.error.empty() ? "" : ": " + o.error.describe()),
                    o.error);
  }
  const PrivateKey key = PrivateKey::generate(config_.key_type);
  o = client_->finalize(o.finalize, make_csr(config_.domains, key), retry_after);
  o = poll_order(url, std::move(o), "processing", retry_after);
  if (o.status != "valid" || o.certificate.empty()) {
    throw AcmeError(fmt::format("order {} is {} after finalize{}", url, o.status,
                                o.error.empty() ? "" : ": " + o.error.describe()),
                    o.error);
  }
  StoredCertificate c;
  c.cert_pem = client_->download(o.certificate);
  c.key_pem = key.to_pem();
  c.directory = config_.directory;
  c.domains = config_.domains;
  c.issued_at = static_cast<int64_t>(now_seconds());
  const auto pair = tls::KeyPair::from_pem(c.cert_pem, c.key_pem, o.certificate);
  for (const std::string& d : config_.domains) {
    if (!pair->covers(d)) throw AcmeError(fmt::format("the certificate does not cover {}", d));
  }
  c.path = storage_.save_certificate(c, pair->info().serial);
  serve(c, "order");
}

Order Manager::poll_order(const std::string& url, Order o, const char* waiting,
                          std::optional<seconds> retry_after) {
  Duration backoff(500);
  while (o.status == waiting) {
    if (!interrupt_.sleep_for(poll_wait(backoff, retry_after))) throw AcmeError("stopped");
    o = client_->get_order(url, retry_after);
  }
  return o;
}

bool Manager::start_authorization(const std::string& url, Published& published) {
  std::optional<seconds> retry_after;
  const Authorization a = client_->get_authorization(url, retry_after);
  if (a.status == "valid") {
    spdlog::info("acme: {} is authorized already", a.identifier);
    return false;
  }
  if (a.status != "pending") {
    throw AcmeError(fmt::format("the authorization for {} is {}", a.identifier, a.status));
  }
  auto it = std::find_if(a.challenges.begin(), a.challenges.end(),
                         [](const Challenge& c) { return c.type == "http-01"; });
  if (it == a.challenges.end()) {
    throw AcmeError(
        fmt::format("{} offers no http-01 challenge for {}", config_.directory, a.identifier));
  }
  if (!valid_token(it->token)) throw AcmeError("the http-01 token is not base64url");
  published.add(it->token, it->token + "." + thumbprint_);
  if (it->status == "pending") client_->respond(it->url);
  spdlog::info("acme: answering the http-01 challenge for {} on the plain listeners ({})",
               a.identifier,
               config_.challenge_listener.empty() ? "port 80" : config_.challenge_listener);
  return true;
}

void Manager::finish_authorization(const std::string& url) {
  std::optional<seconds> retry_after;
  Authorization a = client_->get_authorization(url, retry_after);
  Duration backoff(500);
  while (a.status == "pending") {
    if (!interrupt_.sleep_for(poll_wait(backoff, retry_after))) throw AcmeError("stopped");
    a = client_->get_authorization(url, retry_after);
  }
  if (a.status != "valid") {
    Problem p;
    for (const Challenge& c : a.challenges) {
      if (c.type == "http-01" && !c.error.empty()) p = c.error;
    }
    throw AcmeError(fmt::format("validation of {} failed ({}){}", a.identifier, a.status,
                                p.empty() ? "" : ": " + p.describe()),
                    p);
  }
  spdlog::info("acme: {} validated", a.identifier);
}

}  // namespace sidecar::acme
