// One active health check of one endpoint (see health_checker.h for the
// semantics): its schedule, its current attempt, and the verdicts it
// publishes into the endpoint's EndpointHealth.
//
// Thread safety: lives on the health thread; all methods run there.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/config.h"
#include "core/random.h"
#include "tls/slot.h"
#include "upstream/health.h"

namespace sidecar::upstream {

class HealthSession : public std::enable_shared_from_this<HealthSession> {
 public:
  struct Target {
    std::string cluster;
    std::string address;    // "127.0.0.1:8080"
    std::string host_name;  // for TLS SNI/verification: the configured name, else the IP
    boost::asio::ip::tcp::endpoint endpoint;
    config::UpstreamProtocol protocol = config::UpstreamProtocol::kHttp1;
  };
  // How one check ended.
  enum class Verdict : uint8_t {
    kHealthy,
    kDegraded,      // healthy, with `x-envoy-degraded` in the response (Envoy's signal)
    kFailed,        // counts towards unhealthy_threshold (network, timeout, retriable status)
    kFailedActive,  // the upstream said no (unexpected status, NOT_SERVING): at once
  };

  HealthSession(boost::asio::io_context& io, Target target, config::HealthCheck check,
                std::shared_ptr<tls::ClientSlot> tls, std::shared_ptr<EndpointHealth> health);
  ~HealthSession();

  // Whether this session already runs `check` with `tls` (kept across reloads).
  bool same(const config::HealthCheck& check, const std::shared_ptr<tls::ClientSlot>& tls) const {
    return check == check_ && tls == tls_;
  }
  void set_uneject(bool uneject) { uneject_on_success_ = uneject; }

  // The first check runs at once, then one per interval (+ jitter).
  void start();
  // Cancels the schedule and any attempt in flight.
  void stop();

  // Applies one verdict to the endpoint's state (also used by tests).
  static void publish(EndpointHealth& health, const config::HealthCheck& check, Verdict verdict,
                      bool uneject_on_success, const std::string& why);

  struct Attempt;  // one connection's worth of check (health_session.cc)

 private:
  void schedule(std::chrono::milliseconds delay);
  void run();
  void finish(uint64_t generation, Verdict verdict, const std::string& why);
  // Protocol steps once connected (and through TLS).
  void send_http(const std::shared_ptr<Attempt>& a);
  void read_http(const std::shared_ptr<Attempt>& a);
  void send_tcp(const std::shared_ptr<Attempt>& a);
  void read_tcp(const std::shared_ptr<Attempt>& a);
  void run_grpc(const std::shared_ptr<Attempt>& a);

  boost::asio::io_context& io_;
  const Target target_;
  const config::HealthCheck check_;
  const std::shared_ptr<tls::ClientSlot> tls_;
  const std::shared_ptr<EndpointHealth> health_;
  bool uneject_on_success_ = true;
  boost::asio::steady_timer interval_timer_;
  boost::asio::steady_timer timeout_timer_;
  std::shared_ptr<Attempt> attempt_;
  uint64_t generation_ = 0;
  bool stopped_ = false;
  core::Random random_;
};

}  // namespace sidecar::upstream
