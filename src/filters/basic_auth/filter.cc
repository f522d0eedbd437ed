#include "filters/basic_auth/filter.h"

#include <string.h>
#include <cerrno>
#include <cstring>

#include <condition_variable>
#include <deque>
#include <functional>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "crypto/crypto.h"

namespace sidecar::filters::basic_auth {
namespace {

constexpr const char* kDenied = "sidecar_basic_auth_denied_total";
constexpr const char* kDeniedHelp = "Requests refused by basic_auth, by reason.";
constexpr size_t kMaxVerified = 4096;
constexpr size_t kMaxQueued = 1024;
// Checked for unknown users so that they cost what a known one does
// (bcrypt, cost 10, of a random password).
constexpr const char* kDummyHash = "$2b$10$XBWmFvQs0Ld9hWWaxrlvV.V/ya5GMA4KTA3fsXyiDnq1zCL4nkzKu";

}  // namespace

struct Filter::Pending {
  std::mutex mutex;
  boost::asio::io_context* io = nullptr;  // null once the filter no longer waits
  Filter* filter = nullptr;
};

namespace {

// One thread for the slow hashes of every basic_auth filter of the process:
// a queue, bounded, and the answer posted to the asking worker.
class Verifier {
 public:
  static Verifier& instance() {
    static Verifier* v = new Verifier();  // never destroyed: the thread runs until exit
    return *v;
  }

  bool submit(std::string hash, std::string password, std::shared_ptr<Filter::Pending> p,
              std::function<void(Filter*, bool)> done) {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= kMaxQueued) return false;
    queue_.push_back({std::move(hash), std::move(password), std::move(p), std::move(done)});
    wake_.notify_one();
    return true;
  }

 private:
  struct Job {
    std::string hash, password;
    std::shared_ptr<Filter::Pending> pending;
    std::function<void(Filter*, bool)> done;
  };

  Verifier() : thread_([this] { run(); }) { thread_.detach(); }

  void run() {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return !queue_.empty(); });
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      bool alive;
      {
        std::lock_guard lock(job.pending->mutex);
        alive = job.pending->io != nullptr;
      }
      const bool ok = alive && verify(job.hash, job.password);
      explicit_bzero(job.password.data(), job.password.size());
      std::lock_guard lock(job.pending->mutex);
      if (job.pending->io == nullptr) continue;  // the stream went away
      boost::asio::post(*job.pending->io, [p = job.pending, done = std::move(job.done), ok] {
        Filter* f = nullptr;
        {
          std::lock_guard lock(p->mutex);
          f = p->filter;
        }
        if (f != nullptr) done(f, ok);
      });
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::thread thread_;
};

}  // namespace

UserStore::UserStore(const Config& config) : path_(config.users_file) {
  crypto::library().random_bytes(key_.data(), key_.size());
  if (path_.empty()) {
    auto users = std::make_shared<std::vector<User>>();
    std::string why;
    if (parse_htpasswd(config.users_inline, *users, why)) users_ = std::move(users);
    return;
  }
  std::lock_guard lock(mutex_);
  load();
}

void UserStore::load() {
  checked_ = std::chrono::steady_clock::now();
  switch (version_.check(path_)) {
    case core::FileVersion::Check::kUnreadable:
      spdlog::error("basic_auth: cannot read {}", path_);
      return;  // keep what we had
    case core::FileVersion::Check::kStillUnreadable:
    case core::FileVersion::Check::kUnchanged:
      return;
    case core::FileVersion::Check::kChanged:
      break;
  }
  std::string text;
  if (!core::read_file(path_, text)) {
    spdlog::error("basic_auth: cannot read {}: {}", path_, std::strerror(errno));
    version_ = {};  // read again at the next check
    return;
  }
  auto users = std::make_shared<std::vector<User>>();
  std::string why;
  if (!parse_htpasswd(text, *users, why)) {
    spdlog::error("basic_auth: {}: {}{}", path_, why,
                  users_ ? " (keeping the previous users)" : "");
    return;
  }
  spdlog::info("basic_auth: {} users from {}", users->size(), path_);
  users_ = std::move(users);
  verified_.clear();
}

std::shared_ptr<const std::vector<User>> UserStore::users() {
  std::lock_guard lock(mutex_);
  if (!path_.empty() && std::chrono::steady_clock::now() - checked_ >= std::chrono::seconds(1)) {
    load();
  }
  return users_;
}

std::string UserStore::tag(std::string_view user, std::string_view password,
                           std::string_view hash) const {
  std::string input;
  input.reserve(user.size() + password.size() + hash.size() + 2);
  input.append(user).append(1, '\0').append(password).append(1, '\0').append(hash);
  std::string mac = crypto::library().hmac(
      crypto::Hash::kSha256,
      std::string_view(reinterpret_cast<const char*>(key_.data()), key_.size()), input);
  explicit_bzero(input.data(), input.size());
  return mac;
}

bool UserStore::known_good(std::string_view user, std::string_view password,
                           std::string_view hash) {
  const std::string t = tag(user, password, hash);
  std::lock_guard lock(mutex_);
  return verified_.contains(t);  // a hash lookup of a MAC: no secret-dependent timing
}

void UserStore::remember(std::string_view user, std::string_view password, std::string_view hash) {
  std::string t = tag(user, password, hash);
  std::lock_guard lock(mutex_);
  if (verified_.size() >= kMaxVerified) verified_.clear();
  verified_.insert(std::move(t));
}

Factory::Factory(std::shared_ptr<const Config> c)
    : config(std::move(c)),
      store(config->disabled ? nullptr : std::make_shared<UserStore>(*config)),
      challenge("Basic realm=\"" + config->realm + "\", charset=\"UTF-8\""),
      allowed(*counter("sidecar_basic_auth_allowed_total", "Requests basic_auth let through.")),
      missing(*counter(kDenied, kDeniedHelp, {{"reason", "missing"}})),
      invalid(*counter(kDenied, kDeniedHelp, {{"reason", "invalid"}})),
      overloaded(*counter(kDenied, kDeniedHelp, {{"reason", "overloaded"}})) {
  crypto::library();  // loaded here, on the main thread, not on a worker's first request
}

std::unique_ptr<http::HttpFilter> Factory::create() const {
  return std::make_unique<Filter>(shared_from_this());
}

Filter::~Filter() { on_stream_end(); }

void Filter::on_stream_end() {
  if (pending_) {
    std::lock_guard lock(pending_->mutex);
    pending_->io = nullptr;
    pending_->filter = nullptr;
  }
  pending_.reset();
  cb_ = nullptr;
  explicit_bzero(password_.data(), password_.size());
  password_.clear();
}

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  if (const auto* route = static_cast<const Config*>(cb.route_config("basic_auth"));
      (route != nullptr && route->disabled) || !factory_->store) {
    return http::FilterStatus::kContinue;
  }
  const http::HeaderField* authorization = cb.request().find("authorization");
  if (authorization == nullptr || !decode_basic(authorization->value, user_, password_)) {
    deny(cb, true);
    return http::FilterStatus::kStopIteration;
  }
  const auto users = factory_->store->users();
  const User* match = nullptr;
  if (users) {
    for (const User& u : *users) {
      if (crypto::constant_time_equal(u.name, user_) && match == nullptr) {
        match = &u;
      }
    }
  }
  hash_ = match != nullptr ? match->hash : kDummyHash;
  if (match != nullptr && hash_kind(hash_) == HashKind::kSha1) {
    if (verify(hash_, password_)) {
      allow(cb, user_);
      return http::FilterStatus::kContinue;
    }
    deny(cb, false);
    return http::FilterStatus::kStopIteration;
  }
  if (match != nullptr && factory_->store->known_good(user_, password_, hash_)) {
    allow(cb, user_);
    return http::FilterStatus::kContinue;
  }
  // The slow hash, off the event loop; an unknown user's against the dummy.
  pending_ = std::make_shared<Pending>();
  pending_->io = &cb.io();
  pending_->filter = this;
  cb_ = &cb;
  const bool known = match != nullptr;
  if (!Verifier::instance().submit(hash_, password_, pending_,
                                   [known](Filter* f, bool ok) { f->finish(known && ok); })) {
    pending_.reset();
    cb_ = nullptr;
    factory_->overloaded.add();
    cb.set_response_detail("basic_auth_overloaded");
    cb.send_local_reply(503, "basic_auth: too many logins being verified\n");
  }
  return http::FilterStatus::kStopIteration;
}

void Filter::finish(bool ok) {
  http::FilterCallbacks* cb = cb_;
  {
    std::lock_guard lock(pending_->mutex);
    pending_->io = nullptr;
    pending_->filter = nullptr;
  }
  pending_.reset();
  cb_ = nullptr;
  if (cb == nullptr) return;
  if (!ok) {
    deny(*cb, false);
    return;
  }
  factory_->store->remember(user_, password_, hash_);
  allow(*cb, user_);
  cb->continue_request();
}

void Filter::allow(http::FilterCallbacks& cb, const std::string& user) {
  factory_->allowed.add();
  cb.set_metadata("basic_auth.user", user);
  const Config& c = *factory_->config;
  if (!c.forward_username_header.empty()) cb.set_request_header(c.forward_username_header, user);
  if (!c.forward) cb.remove_request_header("authorization");
  explicit_bzero(password_.data(), password_.size());
  password_.clear();
}

void Filter::deny(http::FilterCallbacks& cb, bool missing) {
  explicit_bzero(password_.data(), password_.size());
  password_.clear();
  (missing ? factory_->missing : factory_->invalid).add();
  cb.set_response_detail(missing ? "basic_auth_missing" : "basic_auth_invalid");
  http::LocalResponse r;
  r.status = 401;
  r.headers.emplace_back("www-authenticate", factory_->challenge);
  r.headers.emplace_back("content-type", "text/plain");
  r.body = missing ? "basic_auth: credentials required\n" : "basic_auth: invalid credentials\n";
  cb.send_response(std::move(r));
}

}  // namespace sidecar::filters::basic_auth
