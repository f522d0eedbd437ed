#include "admin/admin_server.h"

#include <array>
#include <deque>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "core/buffer.h"
#include "http/http1_parser.h"
#include "http/local_reply.h"
#include "net/listen_socket.h"
#include "net/transport.h"
#include "tls/tls.h"

namespace sidecar::admin {

using boost::asio::awaitable;
using boost::asio::use_awaitable;
using boost::asio::ip::tcp;

namespace {
constexpr auto kIdleTimeout = std::chrono::seconds(60);

// net::Transport's operations as Asio operations (for co_await).
template <typename Token>
auto async_read(net::Transport& t, boost::asio::mutable_buffer b, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, size_t)>(
      [&t](auto handler, boost::asio::mutable_buffer b) {
        t.async_read_some(b, std::move(handler));
      },
      token, b);
}

template <typename Token>
auto async_write(net::Transport& t, std::vector<boost::asio::const_buffer>& spans, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
      [&t, &spans](auto handler) { t.async_write(spans, std::move(handler)); }, token);
}

template <typename Token>
auto async_handshake(net::Transport& t, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
      [&t](auto handler) { t.async_handshake(std::move(handler)); }, token);
}
}  // namespace

// One streamed response: a queue the session drains, and a timer that
// never expires on its own and is cancelled to wake the session.
struct StreamState final : AdminStream {
  explicit StreamState(boost::asio::io_context& io) : wake(io) {
    wake.expires_at(boost::asio::steady_timer::time_point::max());
  }
  bool write(std::string data) override {
    if (gone) return false;
    queue.push_back(std::move(data));
    wake.cancel();
    return true;
  }
  void finish() override {
    done = true;
    wake.cancel();
  }
  bool closed() const override { return gone; }

  boost::asio::steady_timer wake;
  std::deque<std::string> queue;
  bool done = false;
  bool gone = false;
};

struct AdminServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& io) : io(io), acceptor(io) {}

  boost::asio::io_context& io;
  tcp::acceptor acceptor;
  std::shared_ptr<tls::ServerSlot> tls;
  size_t max_body = 64 * 1024;
  config::Address address;
  std::map<std::string, std::map<std::string, Handler>> routes;  // path -> method -> handler
  struct StreamRoute {
    std::string content_type;
    StreamHandler handler;
  };
  std::map<std::string, StreamRoute> stream_routes;  // GET only

  // Writes the head, runs the handler, then whatever it streams; returns
  // when the stream finished or the client went away.
  awaitable<void> stream(net::Transport& t, const AdminRequest& req, const StreamRoute& route) {
    boost::system::error_code ec;
    std::string head = fmt::format(
        "HTTP/1.1 200 OK\r\ncontent-type: {}\r\ncache-control: no-cache\r\n"
        "x-accel-buffering: no\r\nconnection: close\r\n\r\n",
        route.content_type);
    std::vector<boost::asio::const_buffer> spans{boost::asio::buffer(head)};
    co_await async_write(t, spans, boost::asio::redirect_error(use_awaitable, ec));
    auto s = std::make_shared<StreamState>(io);
    if (ec) {
      s->gone = true;
      co_return;
    }
    route.handler(req, s);
    std::string chunk;
    while (true) {
      if (!s->queue.empty()) {
        chunk = std::move(s->queue.front());
        s->queue.pop_front();
        spans.assign({boost::asio::buffer(chunk)});
        co_await async_write(t, spans, boost::asio::redirect_error(use_awaitable, ec));
        if (ec) break;
        continue;
      }
      if (s->done) break;
      s->wake.expires_at(boost::asio::steady_timer::time_point::max());
      co_await s->wake.async_wait(boost::asio::redirect_error(use_awaitable, ec));
    }
    s->gone = true;
    s->queue.clear();
    t.shutdown_send(ec);
  }

  awaitable<void> accept_loop() {
    auto self = shared_from_this();
    while (acceptor.is_open()) {
      boost::system::error_code ec;
      tcp::socket socket =
          co_await acceptor.async_accept(boost::asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (ec == boost::asio::error::operation_aborted) co_return;
        continue;
      }
      boost::asio::co_spawn(io, session(std::move(socket)), boost::asio::detached);
    }
  }

  void dispatch(const AdminRequest& req, AdminResponse& resp) {
    auto it = routes.find(req.path);
    if (it == routes.end()) {
      resp.status = 404;
      resp.body = "not found\n";
      return;
    }
    auto h = it->second.find(req.method == "HEAD" ? "GET" : req.method);
    if (h == it->second.end()) {
      resp.status = 405;
      resp.body = fmt::format("{} needs {}\n", req.path, it->second.begin()->first);
      return;
    }
    try {
      h->second(req, resp);
    } catch (const std::exception& e) {
      resp.status = 500;
      resp.body = fmt::format("internal error: {}\n", e.what());
    }
  }

  awaitable<void> session(tcp::socket socket) {
    auto self = shared_from_this();
    boost::asio::steady_timer watchdog(io);
    net::Transport t(std::move(socket));
    // Every wait is bounded: a silent client is closed after kIdleTimeout.
    auto guard = [&] {
      watchdog.expires_after(kIdleTimeout);
      watchdog.async_wait([&t](const boost::system::error_code& e) {
        if (!e) t.close();
      });
    };
    boost::system::error_code ec;
    if (tls) {
      boost::system::error_code nb;
      t.socket().non_blocking(true, nb);
      t.set_secure(tls->get()->new_session(t.socket().native_handle()));
      guard();
      co_await async_handshake(t, boost::asio::redirect_error(use_awaitable, ec));
      watchdog.cancel();
      if (ec) co_return;  // scanners, probes without TLS
    }
    core::Buffer in(16 * 1024);
    http::Limits limits;
    http::RequestParser parser(limits);
    http::RequestHead head;
    std::vector<boost::asio::const_buffer> out_spans;
    auto reply = [&](std::string& out) {
      out_spans.assign({boost::asio::buffer(out)});
      return async_write(t, out_spans, boost::asio::redirect_error(use_awaitable, ec));
    };
    auto read_more = [&] {
      if (in.write_space() == 0) in.compact();
      if (in.write_space() == 0) in.reserve(in.capacity() * 2);
      guard();
      return async_read(t, boost::asio::buffer(in.write_ptr(), in.write_space()),
                        boost::asio::redirect_error(use_awaitable, ec));
    };
    while (true) {
      // Head.
      http::HeadResult r;
      while ((r = parser.feed(in.readable(), head)).status == http::HeadResult::kNeedMore) {
        const size_t n = co_await read_more();
        watchdog.cancel();
        if (ec || n == 0) co_return;
        in.commit(n);
      }
      std::string out;
      if (r.status == http::HeadResult::kError) {
        http::append_local_reply(out, http::status_for(r.error),
                                 fmt::format("{}\n", http::to_string(r.error)), true, false);
        co_await reply(out);
        co_return;
      }
      AdminRequest req;
      req.method = std::string(head.method_name);
      const std::string_view target = head.target;
      const size_t q = target.find('?');
      req.path = std::string(target.substr(0, q));
      if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
      if (const http::HeaderField* a = head.find("accept")) req.accept = std::string(a->value);
      const bool keep_alive = head.keep_alive();
      const bool is_head = head.method == http::Method::kHead;
      const http::BodyKind body_kind = head.body;
      const uint64_t content_length = head.content_length;
      in.consume(r.consumed);
      parser.reset();
      if (body_kind == http::BodyKind::kChunked || content_length > max_body) {
        http::append_local_reply(
            out, 413,
            fmt::format("requests here take bodies up to {} bytes, not chunked\n", max_body), true,
            false);
        co_await reply(out);
        co_return;
      }
      while (in.size() < content_length) {
        const size_t n = co_await read_more();
        watchdog.cancel();
        if (ec || n == 0) co_return;
        in.commit(n);
      }
      req.body = std::string(in.readable().substr(0, content_length));
      in.consume(content_length);

      if (auto st = stream_routes.find(req.path);
          st != stream_routes.end() && req.method == "GET") {
        co_await stream(t, req, st->second);
        co_return;
      }
      AdminResponse resp;
      dispatch(req, resp);
      out = fmt::format("HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n{}\r\n",
                        resp.status, http::reason_phrase(resp.status), resp.content_type,
                        resp.body.size(), keep_alive ? "" : "connection: close\r\n");
      // Head and body as two buffers of one write: a scrape body can be megabytes.
      out_spans.assign({boost::asio::buffer(out),
                        boost::asio::buffer(resp.body.data(), is_head ? 0 : resp.body.size())});
      co_await async_write(t, out_spans, boost::asio::redirect_error(use_awaitable, ec));
      if (ec || !keep_alive) {
        t.shutdown_send(ec);
        co_return;
      }
    }
  }
};

AdminServer::AdminServer(boost::asio::io_context& io, const config::Address& address,
                         std::shared_ptr<tls::ServerSlot> tls)
    : impl_(std::make_shared<Impl>(io)) {
  impl_->tls = std::move(tls);
  net::ListenSockets s = net::open_listen_sockets(address, 1, false, 128);
  impl_->address = s.address;
  const bool v6 = address.host.find(':') != std::string::npos;
  impl_->acceptor.assign(v6 ? tcp::v6() : tcp::v4(), s.fds[0]);
}

AdminServer::~AdminServer() { stop(); }

const config::Address& AdminServer::address() const { return impl_->address; }

void AdminServer::handle(const std::string& method, const std::string& path, Handler handler) {
  impl_->routes[path][method] = std::move(handler);
}

void AdminServer::handle_stream(const std::string& path, const std::string& content_type,
                                StreamHandler handler) {
  impl_->stream_routes[path] = {content_type, std::move(handler)};
}

AdminResponse AdminServer::get(const std::string& path, const std::string& query) {
  AdminRequest req;
  req.method = "GET";
  req.path = path;
  req.query = query;
  AdminResponse resp;
  impl_->dispatch(req, resp);
  return resp;
}

void AdminServer::set_max_body(size_t bytes) { impl_->max_body = bytes; }

void AdminServer::start() {
  boost::asio::co_spawn(impl_->io, impl_->accept_loop(), boost::asio::detached);
}

void AdminServer::stop() {
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
}

}  // namespace sidecar::admin
