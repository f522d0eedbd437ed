#include "supervisor/readiness.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace sidecar::supervisor {

using boost::asio::awaitable;
using boost::asio::use_awaitable;
using boost::asio::ip::tcp;

struct ReadinessProbe::State : std::enable_shared_from_this<State> {
  State(boost::asio::io_context& io, uint16_t port, config::ReadyCheck check)
      : io(io), port(port), check(std::move(check)), timer(io) {}

  boost::asio::io_context& io;
  uint16_t port;
  config::ReadyCheck check;
  boost::asio::steady_timer timer;
  bool ready = false;
  bool stopped = false;
  std::function<void(bool)>* on_change = nullptr;

  // One check: true when the app answered as expected within the timeout.
  awaitable<bool> probe() {
    tcp::socket socket(io);
    boost::asio::steady_timer deadline(io);
    deadline.expires_after(check.timeout);
    deadline.async_wait([&socket](const boost::system::error_code& ec) {
      if (!ec) socket.close();
    });
    boost::system::error_code ec;
    co_await socket.async_connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port),
                                  boost::asio::redirect_error(use_awaitable, ec));
    if (ec || check.http_path.empty()) {
      deadline.cancel();
      co_return !ec;
    }
    const std::string request = fmt::format(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: sidecar-ready-check\r\n"
        "Connection: close\r\n\r\n",
        check.http_path, port);
    co_await boost::asio::async_write(socket, boost::asio::buffer(request),
                                      boost::asio::redirect_error(use_awaitable, ec));
    boost::asio::streambuf in(4096);
    if (!ec) {
      co_await boost::asio::async_read_until(socket, in, "\r\n",
                                             boost::asio::redirect_error(use_awaitable, ec));
    }
    deadline.cancel();
    if (ec) co_return false;
    std::string line(boost::asio::buffers_begin(in.data()), boost::asio::buffers_end(in.data()));
    // "HTTP/1.x NNN ..."
    if (line.size() < 12 || line.compare(0, 7, "HTTP/1.") != 0) co_return false;
    const int status = std::atoi(line.c_str() + 9);
    co_return status >= 200 && status < 400;
  }

  awaitable<void> loop() {
    auto self = shared_from_this();
    while (!stopped) {
      const bool ok = co_await probe();
      if (stopped) co_return;
      if (ok != ready) {
        ready = ok;
        spdlog::info("the app is {}ready ({})", ok ? "" : "not ",
                     check.http_path.empty() ? fmt::format("tcp 127.0.0.1:{}", port)
                                             : fmt::format("GET {}", check.http_path));
        if (on_change != nullptr && *on_change) (*on_change)(ok);
      }
      timer.expires_after(check.period);
      boost::system::error_code ec;
      co_await timer.async_wait(boost::asio::redirect_error(use_awaitable, ec));
    }
  }
};

ReadinessProbe::ReadinessProbe(boost::asio::io_context& io, uint16_t port, config::ReadyCheck check)
    : state_(std::make_shared<State>(io, port, std::move(check))) {
  state_->on_change = &on_change;
}

ReadinessProbe::~ReadinessProbe() { stop(); }

void ReadinessProbe::start() {
  boost::asio::co_spawn(state_->io, state_->loop(), boost::asio::detached);
}

void ReadinessProbe::stop() {
  state_->stopped = true;
  state_->on_change = nullptr;
  state_->timer.cancel();
}

bool ReadinessProbe::ready() const { return state_->ready; }

}  // namespace sidecar::supervisor
