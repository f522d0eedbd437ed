#include "filters/rate_limit/filter.h"

#include <fmt/format.h>
#include <boost/asio/steady_timer.hpp>

#include "accesslog/entry.h"
#include "filters/local_rate_limit/filter.h"
#include "filters/rate_limit/redis_client.h"

namespace sidecar::filters::rate_limit {
namespace {

constexpr size_t kMaxKeyValue = 256;  // bytes of a key value kept in the Redis key

uint64_t ceil_seconds_ms(int64_t ms) {
  return ms <= 0 ? 1 : static_cast<uint64_t>((ms + 999) / 1000);
}

}  // namespace

struct Filter::Pending {
  explicit Pending(boost::asio::io_context& io) : timer(io) {}
  boost::asio::steady_timer timer;
  bool live = true;  // false once decided or the stream went away
  http::FilterCallbacks* cb = nullptr;
  RedisClient* client = nullptr;
  size_t outstanding = 0;
  bool error = false;
  std::string error_text;
  // The first limiting descriptor and its answer {admitted, remaining, retry_ms, reset_ms}.
  const Descriptor* limited_by = nullptr;
  std::vector<int64_t> limited_reply;
};

// One EVALSHA of one request, resent once with EVAL on NOSCRIPT (a Redis
// that restarted or never saw the script).
struct Filter::CallState {
  Filter* filter = nullptr;  // valid while pending->live
  std::shared_ptr<Pending> pending;
  const Descriptor* descriptor = nullptr;
  std::vector<std::string> args;
};

void Filter::send(std::shared_ptr<CallState> s) {
  RedisClient* client = s->pending->client;
  std::vector<std::string> args = s->args;
  client->command(std::move(args), [s](RedisReply r) {
    Pending& p = *s->pending;
    if (!p.live) return;
    if (!r.ok && r.error.starts_with("NOSCRIPT") && s->args[0] == "EVALSHA") {
      s->args[0] = "EVAL";
      s->args[1] = script();
      send(s);
      return;
    }
    if (!r.ok || r.ints.size() != 4) {
      p.error = true;
      p.error_text = r.ok ? "unexpected reply" : r.error;
    } else if (r.ints[0] == 0 && p.limited_by == nullptr) {
      p.limited_by = s->descriptor;
      p.limited_reply = r.ints;
    }
    if (--p.outstanding == 0) s->filter->finish(p);
  });
}

Filter::~Filter() { on_stream_end(); }

void Filter::on_stream_end() {
  if (!pending_) return;
  pending_->live = false;
  pending_->timer.cancel();
  pending_.reset();
}

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  const Config& c = *config_;
  const std::string_view path = cb.path();
  struct Call {
    const Descriptor* d;
    std::string key;
  };
  std::vector<Call> calls;
  for (const Descriptor& d : c.descriptors) {
    if (!path.starts_with(d.prefix)) continue;
    std::string_view value;
    switch (d.key.kind) {
      case local_rate_limit::DescriptorKey::Kind::kNone:
        break;
      case local_rate_limit::DescriptorKey::Kind::kClientIp:
        value = local_rate_limit::client_ip(cb.request(), cb.peer_ip(), c.xff_num_trusted_hops);
        break;
      case local_rate_limit::DescriptorKey::Kind::kHeader: {
        const http::HeaderField* f = cb.request().find(d.key.header);
        if (f == nullptr) continue;
        value = f->value;
        break;
      }
      case local_rate_limit::DescriptorKey::Kind::kPath:
        value = path.substr(0, path.find('?'));
        break;
    }
    calls.push_back({&d, fmt::format("{}:rl:{}:{}", c.domain, d.name,
                                     value.substr(0, std::min(value.size(), kMaxKeyValue)))});
  }
  if (calls.empty()) return http::FilterStatus::kContinue;

  auto p = std::make_shared<Pending>(cb.io());
  pending_ = p;
  p->cb = &cb;
  p->client = &RedisClient::of(cb.io(), c.redis);
  p->outstanding = calls.size();
  p->timer.expires_after(c.timeout);
  p->timer.async_wait([this, p](const boost::system::error_code& ec) {
    if (ec || !p->live) return;
    p->error = true;
    p->error_text = "timeout";
    RedisClient* client = p->client;
    finish(*p);
    // A Redis that does not answer keeps no callbacks (they get a failed
    // reply now, ignored: the request is decided).
    client->reset();
  });
  for (const Call& call : calls) {
    auto state = std::make_shared<CallState>();
    state->filter = this;
    state->pending = p;
    state->descriptor = call.d;
    state->args = {"EVALSHA",
                   script_sha1(),
                   "1",
                   call.key,
                   std::to_string(call.d->limit),
                   std::to_string(call.d->window.count())};
    send(std::move(state));
  }
  return http::FilterStatus::kStopIteration;
}

void Filter::finish(Pending& p) {
  // Runs from a reply or the timer, on the worker, while the stream lives.
  p.live = false;
  p.timer.cancel();
  auto keep = pending_;  // `p` stays valid until the end of this call
  pending_.reset();
  http::FilterCallbacks& cb = *p.cb;
  const Config& c = *config_;
  if (p.limited_by != nullptr) {
    limited_.get(cb.listener_name(), cb.route_name())->add(1);
    const Descriptor& d = *p.limited_by;
    http::LocalResponse reply;
    reply.status = static_cast<int>(c.status);
    reply.headers = {
        {"content-type", "text/plain"},
        {"retry-after", std::to_string(ceil_seconds_ms(p.limited_reply[2]))},
        {"ratelimit-policy",
         fmt::format("\"{}\";q={};w={}", d.name, d.limit, ceil_seconds_ms(d.window.count()))},
        {"ratelimit", fmt::format("\"{}\";r=0;t={}", d.name, ceil_seconds_ms(p.limited_reply[2]))}};
    reply.body = "rate_limited\n";
    cb.set_response_flag(accesslog::kRateLimited);
    cb.set_response_detail("rate_limited");
    cb.send_response(std::move(reply));
    return;
  }
  if (p.error) {
    errors_.get(cb.listener_name(), cb.route_name())->add(1);
    if (c.failure_mode_deny) {
      cb.set_response_detail("rate_limit_service_error");
      cb.send_local_reply(500, "rate limit service error: " + p.error_text + "\n");
      return;
    }
  } else {
    allowed_.get(cb.listener_name(), cb.route_name())->add(1);
  }
  cb.continue_request();
}

}  // namespace sidecar::filters::rate_limit
