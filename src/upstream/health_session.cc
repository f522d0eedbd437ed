#include "upstream/health_session.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/buffer.hpp>

#include "http/http1_parser.h"
#include "net/transport.h"
#include "tls/tls.h"
#include "upstream/health_grpc.h"

namespace sidecar::upstream {

namespace asio = boost::asio;
using boost::system::error_code;
constexpr auto kRelaxed = std::memory_order_relaxed;

// One check: its connection, what it sends and what came back. Shared by the
// handlers of its operations, so closing it early (timeout, stop) leaves
// nothing dangling.
struct HealthSession::Attempt {
  explicit Attempt(asio::io_context& io, uint64_t generation)
      : transport(asio::ip::tcp::socket(io)), generation(generation) {}
  net::Transport transport;
  uint64_t generation;
  std::string out;
  std::vector<asio::const_buffer> spans;
  std::string in;
  char buf[4096];
  http::ResponseParser parser;
  http::ResponseHead head;
  std::unique_ptr<GrpcHealthCall> grpc;
};

namespace {

bool in_ranges(const std::vector<std::pair<uint16_t, uint16_t>>& ranges, uint16_t status) {
  for (const auto& [lo, hi] : ranges) {
    if (status >= lo && status <= hi) return true;
  }
  return false;
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

HealthSession::HealthSession(asio::io_context& io, Target target, config::HealthCheck check,
                             std::shared_ptr<tls::ClientSlot> tls,
                             std::shared_ptr<EndpointHealth> health)
    : io_(io),
      target_(std::move(target)),
      check_(std::move(check)),
      tls_(std::move(tls)),
      health_(std::move(health)),
      interval_timer_(io),
      timeout_timer_(io) {}

HealthSession::~HealthSession() = default;

void HealthSession::start() { schedule(std::chrono::milliseconds(0)); }

void HealthSession::stop() {
  stopped_ = true;
  ++generation_;
  interval_timer_.cancel();
  timeout_timer_.cancel();
  if (attempt_) attempt_->transport.close();
  attempt_.reset();
}

void HealthSession::schedule(std::chrono::milliseconds delay) {
  if (stopped_) return;
  interval_timer_.expires_after(delay);
  interval_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->stopped_) return;
    self->run();
  });
}

void HealthSession::run() {
  const uint64_t gen = ++generation_;
  auto a = std::make_shared<Attempt>(io_, gen);
  attempt_ = a;
  timeout_timer_.expires_after(check_.timeout);
  timeout_timer_.async_wait([self = shared_from_this(), gen](const error_code& ec) {
    if (ec) return;
    self->finish(gen, Verdict::kFailed, "timeout");
  });
  a->transport.socket().async_connect(
      target_.endpoint, [self = shared_from_this(), a](const error_code& ec) {
        if (a->generation != self->generation_) return;
        if (ec) {
          self->finish(a->generation, Verdict::kFailed, "connect: " + ec.message());
          return;
        }
        if (self->tls_) {
          auto context = self->tls_->get();
          if (!context) {
            self->finish(a->generation, Verdict::kFailed, "no TLS context");
            return;
          }
          a->transport.set_secure(context->new_session(a->transport.socket().native_handle(),
                                                       self->target_.host_name, nullptr));
        }
        a->transport.async_handshake([self, a](const error_code& hec) {
          if (a->generation != self->generation_) return;
          if (hec) {
            self->finish(a->generation, Verdict::kFailed, "TLS handshake: " + hec.message());
            return;
          }
          switch (self->check_.kind) {
            case config::HealthCheck::Kind::kHttp:
              self->send_http(a);
              break;
            case config::HealthCheck::Kind::kTcp:
              self->send_tcp(a);
              break;
            case config::HealthCheck::Kind::kGrpc:
              self->run_grpc(a);
              break;
          }
        });
      });
}

void HealthSession::send_http(const std::shared_ptr<Attempt>& a) {
  const std::string& host = check_.host.empty() ? target_.cluster : check_.host;
  a->out = fmt::format(
      "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: sidecar-health-check\r\nConnection: "
      "close\r\n\r\n",
      check_.path, host);
  a->spans = {asio::buffer(a->out)};
  a->transport.async_write(a->spans, [self = shared_from_this(), a](const error_code& ec) {
    if (a->generation != self->generation_) return;
    if (ec) {
      self->finish(a->generation, Verdict::kFailed, "write: " + ec.message());
      return;
    }
    self->read_http(a);
  });
}

void HealthSession::read_http(const std::shared_ptr<Attempt>& a) {
  a->transport.async_read_some(
      asio::buffer(a->buf), [self = shared_from_this(), a](const error_code& ec, size_t n) {
        if (a->generation != self->generation_) return;
        if (ec) {
          self->finish(a->generation, Verdict::kFailed, "read: " + ec.message());
          return;
        }
        a->in.append(a->buf, n);
        const http::HeadResult r = a->parser.feed(a->in, a->head);
        if (r.status == http::HeadResult::kNeedMore) {
          self->read_http(a);
          return;
        }
        if (r.status == http::HeadResult::kError) {
          self->finish(a->generation, Verdict::kFailed,
                       fmt::format("bad response: {}", http::to_string(r.error)));
          return;
        }
        const uint16_t status = a->head.status;
        if (status >= 100 && status < 200) {
          // An interim response: the final one follows.
          a->in.erase(0, r.consumed);
          a->parser.reset();
          a->head.clear();
          self->read_http(a);
          return;
        }
        const auto& hc = self->check_;
        if (in_ranges(hc.expected_statuses, status)) {
          const bool degraded = a->head.find("x-envoy-degraded") != nullptr;
          self->finish(a->generation, degraded ? Verdict::kDegraded : Verdict::kHealthy, "");
        } else if (in_ranges(hc.retriable_statuses, status)) {
          self->finish(a->generation, Verdict::kFailed, fmt::format("status {}", status));
        } else {
          self->finish(a->generation, Verdict::kFailedActive, fmt::format("status {}", status));
        }
      });
}

void HealthSession::send_tcp(const std::shared_ptr<Attempt>& a) {
  if (check_.send.empty()) {
    if (check_.expect.empty()) {
      finish(a->generation, Verdict::kHealthy, "");
    } else {
      read_tcp(a);
    }
    return;
  }
  a->out = check_.send;
  a->spans = {asio::buffer(a->out)};
  a->transport.async_write(a->spans, [self = shared_from_this(), a](const error_code& ec) {
    if (a->generation != self->generation_) return;
    if (ec) {
      self->finish(a->generation, Verdict::kFailed, "write: " + ec.message());
      return;
    }
    if (self->check_.expect.empty()) {
      self->finish(a->generation, Verdict::kHealthy, "");
      return;
    }
    self->read_tcp(a);
  });
}

void HealthSession::read_tcp(const std::shared_ptr<Attempt>& a) {
  a->transport.async_read_some(asio::buffer(a->buf), [self = shared_from_this(), a](
                                                         const error_code& ec, size_t n) {
    if (a->generation != self->generation_) return;
    if (ec) {
      self->finish(a->generation, Verdict::kFailed, "expected bytes not received: " + ec.message());
      return;
    }
    a->in.append(a->buf, n);
    if (a->in.find(self->check_.expect) != std::string::npos) {
      self->finish(a->generation, Verdict::kHealthy, "");
      return;
    }
    if (a->in.size() > 64 * 1024) {
      self->finish(a->generation, Verdict::kFailed, "expected bytes not received");
      return;
    }
    self->read_tcp(a);
  });
}

void HealthSession::run_grpc(const std::shared_ptr<Attempt>& a) {
  const std::string& authority = check_.host.empty() ? target_.cluster : check_.host;
  a->grpc = std::make_unique<GrpcHealthCall>(
      a->transport, authority, check_.service_name,
      [self = shared_from_this(), gen = a->generation](GrpcHealthCall::Result r,
                                                       const std::string& why) {
        if (gen != self->generation_) return;
        self->finish(gen,
                     r == GrpcHealthCall::Result::kServing      ? Verdict::kHealthy
                     : r == GrpcHealthCall::Result::kNotServing ? Verdict::kFailedActive
                                                                : Verdict::kFailed,
                     why);
      });
  a->grpc->start();
}

void HealthSession::finish(uint64_t generation, Verdict verdict, const std::string& why) {
  if (generation != generation_ || stopped_) return;
  ++generation_;  // late completions of this attempt are ignored
  timeout_timer_.cancel();
  if (attempt_) {
    attempt_->transport.close();
    // The GrpcHealthCall may be the caller: let it unwind before it is freed.
    asio::post(io_, [a = std::move(attempt_)] {});
  }
  publish(*health_, check_, verdict, uneject_on_success_,
          why.empty() ? std::string()
                      : fmt::format("{} {}: {}", target_.cluster, target_.address, why));
  auto next = check_.interval;
  if (check_.interval_jitter.count() > 0) {
    next += std::chrono::milliseconds(random_.next() %
                                      static_cast<uint64_t>(check_.interval_jitter.count() + 1));
  }
  schedule(next);
}

void HealthSession::publish(EndpointHealth& h, const config::HealthCheck& check, Verdict verdict,
                            bool uneject_on_success, const std::string& why) {
  ClusterHealth& cluster = h.cluster;
  cluster.health_check_attempts.fetch_add(1, kRelaxed);
  h.hc_last_check_unix_ms.store(unix_ms_now(), kRelaxed);
  const bool pending = h.pending_active_hc.exchange(false, kRelaxed);
  const bool failed = h.failed_active_hc.load(kRelaxed);
  if (verdict == Verdict::kHealthy || verdict == Verdict::kDegraded) {
    const bool degraded = verdict == Verdict::kDegraded;
    if (h.degraded_active_hc.exchange(degraded, kRelaxed) != degraded) {
      health_changed();
      spdlog::info("health check: {} {} is {}", cluster.name(), h.address,
                   degraded ? "degraded" : "no longer degraded");
    }
    cluster.health_check_successes.fetch_add(1, kRelaxed);
    h.hc_successes.fetch_add(1, kRelaxed);
    h.hc_consecutive_failures.store(0, kRelaxed);
    const uint32_t ok = h.hc_consecutive_successes.fetch_add(1, kRelaxed) + 1;
    // Envoy: the first check of a new endpoint decides at once.
    if (failed && (pending || ok >= check.healthy_threshold)) {
      h.failed_active_hc.store(false, kRelaxed);
      health_changed();
      spdlog::info("health check: {} {} is healthy", cluster.name(), h.address);
    }
    if (uneject_on_success && h.ejected.load(kRelaxed)) {
      ClusterHealth::uneject(h);
      spdlog::info("outlier detection: {} {} unejected by a passing health check", cluster.name(),
                   h.address);
    }
    return;
  }
  cluster.health_check_failures.fetch_add(1, kRelaxed);
  h.hc_failures.fetch_add(1, kRelaxed);
  h.hc_consecutive_successes.store(0, kRelaxed);
  const uint32_t bad = h.hc_consecutive_failures.fetch_add(1, kRelaxed) + 1;
  if (!failed && (verdict == Verdict::kFailedActive || bad >= check.unhealthy_threshold)) {
    h.failed_active_hc.store(true, kRelaxed);
    health_changed();
    spdlog::warn("health check: {} {} is unhealthy ({})", cluster.name(), h.address, why);
  } else if (!failed) {
    spdlog::debug("health check failed: {}", why);
  }
}

}  // namespace sidecar::upstream
