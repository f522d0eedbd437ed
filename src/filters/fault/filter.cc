#include "filters/fault/filter.h"

#include <charconv>

#include <boost/asio/steady_timer.hpp>

#include "accesslog/entry.h"
#include "core/random.h"

namespace sidecar::filters::fault {
namespace {

// True with probability percentage/100 (a per-thread generator).
bool roll(double percentage) {
  if (percentage >= 100) return true;
  if (percentage <= 0) return false;
  thread_local core::Random random;
  // 53 random bits as a double in [0, 100).
  const double x = static_cast<double>(random.next() >> 11) * (100.0 / 9007199254740992.0);
  return x < percentage;
}

std::optional<uint64_t> header_number(const http::RequestHead& head, std::string_view name) {
  const http::HeaderField* f = head.find(name);
  if (f == nullptr) return std::nullopt;
  uint64_t v = 0;
  const auto* end = f->value.data() + f->value.size();
  const auto r = std::from_chars(f->value.data(), end, v);
  if (r.ec != std::errc() || r.ptr != end) return std::nullopt;
  return v;
}

// The configured percentage, lowered by the request's percentage header.
double percentage(double configured, const http::RequestHead& head, std::string_view header) {
  if (auto v = header_number(head, header)) return std::min<double>(configured, double(*v));
  return configured;
}

constexpr uint64_t kMaxHeaderDelayMs = 3'600'000;  // an hour: a bound, not a policy

}  // namespace

struct Filter::Pending {
  explicit Pending(boost::asio::io_context& io) : timer(io) {}
  boost::asio::steady_timer timer;
  bool live = true;  // false once the delay ended or the stream went away
  const Config* config = nullptr;
};

Filter::Filter(std::shared_ptr<const Config> config) : config_(std::move(config)) {}

Filter::~Filter() { on_stream_end(); }

bool Filter::maybe_abort(const Config& c, http::FilterCallbacks& cb) {
  if (!c.abort) return false;
  const Config::Abort& a = *c.abort;
  const http::RequestHead& head = cb.request();
  int http_status = a.http_status;
  std::optional<int> grpc_status = a.grpc_status;
  if (a.from_header) {
    if (auto v = header_number(head, "x-sidecar-fault-abort-request"); v && *v >= 200 && *v < 600) {
      http_status = static_cast<int>(*v);
    } else if (auto g = header_number(head, "x-sidecar-fault-abort-grpc-request"); g && *g <= 16) {
      grpc_status = static_cast<int>(*g);
    } else {
      return false;
    }
  }
  if (!roll(percentage(a.percentage, head, "x-sidecar-fault-abort-request-percentage")))
    return false;
  aborts_.get(cb.listener_name(), cb.route_name())->add(1);
  cb.set_response_flag(accesslog::kFaultInjected);
  cb.set_response_detail("fault_filter_abort");
  if (grpc_status) {
    // A trailers-only gRPC error: HTTP 200 with grpc-status in the head.
    http::LocalResponse r;
    r.status = 200;
    r.headers = {{"content-type", "application/grpc"},
                 {"grpc-status", std::to_string(*grpc_status)},
                 {"grpc-message", "fault filter abort"}};
    cb.send_response(std::move(r));
  } else {
    cb.send_local_reply(http_status, "fault filter abort\n");
  }
  return true;
}

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  const Config* c = config_.get();
  if (const void* route = cb.route_config("fault")) c = static_cast<const Config*>(route);
  std::atomic<uint64_t>& active = *c->active;
  if (active.load(std::memory_order_relaxed) >= c->max_active_faults)
    return http::FilterStatus::kContinue;
  const http::RequestHead& head = cb.request();
  if (c->delay) {
    std::optional<std::chrono::milliseconds> delay;
    if (!c->delay->from_header) {
      delay = c->delay->fixed;
    } else if (auto v = header_number(head, "x-sidecar-fault-delay-request")) {
      delay = std::chrono::milliseconds(std::min(*v, kMaxHeaderDelayMs));
    }
    if (delay &&
        roll(percentage(c->delay->percentage, head, "x-sidecar-fault-delay-request-percentage"))) {
      // Counted while the delay runs; a race between workers may pass the
      // limit by one per worker (it bounds load, it is not a quota).
      active.fetch_add(1, std::memory_order_relaxed);
      delays_.get(cb.listener_name(), cb.route_name())->add(1);
      cb.set_response_flag(accesslog::kDelayInjected);
      pending_ = std::make_shared<Pending>(cb.io());
      pending_->config = c;
      pending_->timer.expires_after(*delay);
      pending_->timer.async_wait([this, p = pending_, cbp = &cb](const boost::system::error_code&) {
        if (!p->live) return;  // the stream ended first: `this` may be gone
        p->live = false;
        p->config->active->fetch_sub(1, std::memory_order_relaxed);
        // After the delay, the abort fault may still apply (as Envoy).
        if (!maybe_abort(*p->config, *cbp)) cbp->continue_request();
      });
      return http::FilterStatus::kStopIteration;
    }
  }
  if (maybe_abort(*c, cb)) return http::FilterStatus::kStopIteration;
  return http::FilterStatus::kContinue;
}

void Filter::on_stream_end() {
  if (!pending_) return;
  if (pending_->live) {
    pending_->live = false;
    pending_->config->active->fetch_sub(1, std::memory_order_relaxed);
    pending_->timer.cancel();
  }
  pending_.reset();
}

}  // namespace sidecar::filters::fault
