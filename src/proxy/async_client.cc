#include "proxy/async_client.h"

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "proxy/http1_upstream.h"
#include "proxy/worker.h"

namespace sidecar::proxy {

// One request: the upstream stream, its deadline, what came back.
class WorkerHttpClient::Exchange final : public UpstreamEvents {
 public:
  Exchange(WorkerHttpClient& client, uint64_t id, core::Ref<upstream::ClusterRuntime> cluster,
           http::ClientRequest request, Done done)
      : client_(client),
        id_(id),
        cluster_(std::move(cluster)),
        request_(std::move(request)),
        done_(std::move(done)),
        timer_(client.worker_.io()) {}

  void start() {
    timer_.expires_after(request_.timeout);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) fail(fmt::format("timed out after {}ms", request_.timeout.count()));
    });
    upstream_ = std::make_unique<Http1UpstreamStream>(*cluster_, *this, false);
    upstream_->start();
  }

  Done take_done() { return std::move(done_); }

  // UpstreamEvents
  void on_upstream_ready(const error_code& ec) override {
    if (ec) {
      fail(fmt::format("connect failed: {}", upstream_->failure().empty()
                                                 ? ec.message()
                                                 : std::string(upstream_->failure())));
      return;
    }
    std::string& x = extra_;
    for (const auto& [name, value] : request_.headers) {
      x.append(name).append(": ").append(value).append("\r\n");
    }
    if (!request_.body.empty() || request_.method == "POST" || request_.method == "PUT") {
      x.append(fmt::format("content-length: {}\r\n", request_.body.size()));
    }
    OutgoingRequest o;
    o.method = request_.method;
    o.path = request_.path;
    o.authority = request_.authority.empty() ? upstream_->host() : request_.authority;
    o.extra = x;
    o.framing = request_.body.empty() ? Framing::kNone : Framing::kLength;
    body_.clear();
    if (!request_.body.empty()) body_.emplace_back(request_.body.data(), request_.body.size());
    upstream_->send_request(o, body_, false, true);
  }

  void on_upstream_written(const error_code& ec) override {
    if (ec) fail(fmt::format("write failed: {}", ec.message()));
  }

  void on_response_interim(const http::ResponseHead&) override {
    upstream_->consume_response_body(0);
  }

  void on_response_headers(http::ResponseHead& head, Framing) override {
    response_.status = head.status;
    for (const http::HeaderField& f : head.headers) {
      std::string name(f.name);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      response_.headers.emplace_back(std::move(name), std::string(f.value));
    }
    pull();
  }

  void on_response_body() override { pull(); }

  void on_upstream_failed(Failure, const error_code& ec) override {
    fail(fmt::format("upstream failed: {}", ec.message()));
  }

 private:
  void pull() {
    while (true) {
      body_.clear();
      const BodyBatch b = upstream_->response_body(body_, false);
      if (b.error != http::ParseError::kNone) {
        fail(fmt::format("invalid response body: {}", http::to_string(b.error)));
        return;
      }
      for (const auto& s : body_)
        response_.body.append(static_cast<const char*>(s.data()), s.size());
      upstream_->consume_response_body(b.consumed);
      if (response_.body.size() > kMaxBody) {
        fail(fmt::format("response larger than {} bytes", kMaxBody));
        return;
      }
      if (b.end) {
        timer_.cancel();
        upstream_->release(true);
        upstream_.reset();
        client_.finish(id_, std::move(response_));
        return;
      }
      if (b.consumed == 0) {
        upstream_->await_response_body();
        return;
      }
    }
  }

  void fail(std::string why) {
    timer_.cancel();
    if (upstream_) {
      upstream_->release(false);
      upstream_.reset();
    }
    http::ClientResponse r;
    r.error = std::move(why);
    client_.finish(id_, std::move(r));
  }

  WorkerHttpClient& client_;
  const uint64_t id_;
  core::Ref<upstream::ClusterRuntime> cluster_;
  http::ClientRequest request_;
  Done done_;
  boost::asio::steady_timer timer_;
  std::unique_ptr<Http1UpstreamStream> upstream_;
  std::string extra_;
  Spans body_;
  http::ClientResponse response_;
};

WorkerHttpClient::WorkerHttpClient(Worker& worker) : worker_(worker) {}

WorkerHttpClient::~WorkerHttpClient() = default;

uint64_t WorkerHttpClient::send(std::string_view cluster, http::ClientRequest request, Done done) {
  const Snapshot& s = *worker_.snapshot_ptr();
  const int index = s.config->cluster_index(cluster);
  if (index < 0) {
    http::ClientResponse r;
    r.error = fmt::format("no cluster {}", cluster);
    boost::asio::post(worker_.io(),
                      [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
    return 0;
  }
  const uint64_t id = next_id_++;
  auto ex = std::make_unique<Exchange>(*this, id, worker_.cluster_for(s, index), std::move(request),
                                       std::move(done));
  Exchange* raw = ex.get();
  live_[id] = std::move(ex);
  raw->start();
  return id;
}

void WorkerHttpClient::cancel(uint64_t handle) {
  auto it = live_.find(handle);
  if (it == live_.end()) return;
  // Its answer is dropped; the exchange itself is ended off this call stack.
  std::unique_ptr<Exchange> ex = std::move(it->second);
  live_.erase(it);
  ex->take_done();
  boost::asio::post(worker_.io(), [ex = std::shared_ptr<Exchange>(std::move(ex))] {});
}

void WorkerHttpClient::finish(uint64_t id, http::ClientResponse response) {
  auto it = live_.find(id);
  if (it == live_.end()) return;
  std::shared_ptr<Exchange> ex(std::move(it->second));
  live_.erase(it);
  // Posted: never inside send(), and the exchange is destroyed off its own
  // call stack.
  boost::asio::post(worker_.io(), [ex, response = std::move(response)]() mutable {
    if (Done done = ex->take_done()) done(std::move(response));
  });
}

}  // namespace sidecar::proxy
