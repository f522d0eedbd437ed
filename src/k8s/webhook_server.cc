#include "k8s/webhook_server.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>

#include "config/loader.h"
#include "k8s/webhook.h"

namespace sidecar::k8s {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// An AdmissionReview carries one object; a Pod is a few KiB, 4 MiB is the
// API server's own request limit for most objects.
constexpr size_t kBodyLimit = 4 * 1024 * 1024;
constexpr auto kIoTimeout = 30s;

struct FileStamp {
  timespec mtime{};
  ino_t inode = 0;
  off_t size = -1;
  bool operator==(const FileStamp& o) const {
    return mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec && inode == o.inode &&
           size == o.size;
  }
};

FileStamp stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {st.st_mtim, st.st_ino, st.st_size};
}

// The server's TLS context, rebuilt when the certificate files change. New
// connections take the current one; a connection keeps the one it started
// with (shared_ptr).
class CertStore {
 public:
  CertStore(std::string cert, std::string key) : cert_(std::move(cert)), key_(std::move(key)) {}

  // Loads the pair; on failure, `why` says which file and what.
  bool load(std::string& why) {
    auto cert_stamp = stamp(cert_);
    auto key_stamp = stamp(key_);
    try {
      auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
      ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
      ctx->use_certificate_chain_file(cert_);
      ctx->use_private_key_file(key_, asio::ssl::context::pem);
      current_ = std::move(ctx);
      cert_stamp_ = cert_stamp;
      key_stamp_ = key_stamp;
      return true;
    } catch (const boost::system::system_error& e) {
      why = fmt::format("{} / {}: {}", cert_, key_, e.what());
      return false;
    }
  }

  // Reloads when either file changed since the last load (or attempt).
  void check() {
    auto cert_stamp = stamp(cert_);
    auto key_stamp = stamp(key_);
    if (cert_stamp == cert_stamp_ && key_stamp == key_stamp_) return;
    std::string why;
    if (load(why)) {
      spdlog::info("webhook: certificate reloaded from {}", cert_);
    } else {
      // Remember the stamps so that a half-written pair is retried only when
      // it changes again, and say so once.
      cert_stamp_ = cert_stamp;
      key_stamp_ = key_stamp;
      spdlog::error("webhook: keeping the previous certificate: {}", why);
    }
  }

  std::shared_ptr<asio::ssl::context> current() const { return current_; }

 private:
  std::string cert_, key_;
  FileStamp cert_stamp_, key_stamp_;
  std::shared_ptr<asio::ssl::context> current_;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<asio::ssl::context> ctx, const Options& options)
      : ctx_(std::move(ctx)), stream_(std::move(socket), *ctx_), options_(options) {}

  void start() {
    beast::get_lowest_layer(stream_).expires_after(kIoTimeout);
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = shared_from_this()](beast::error_code ec) {
                              if (ec) return;  // scanners, probes without TLS
                              self->read();
                            });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(kBodyLimit);
    beast::get_lowest_layer(stream_).expires_after(kIoTimeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream) return shutdown();
    if (ec) {
      if (ec == http::error::body_limit) respond(413, "{\"error\":\"body too large\"}\n", false);
      return;
    }
    auto& req = parser_->get();
    HttpAnswer answer =
        handle_webhook_request(std::string_view(req.method_string()),
                               std::string_view(req.target()), req.body(), options_);
    respond(answer.status, std::move(answer.body), req.keep_alive(), answer.content_type);
  }

  void respond(int status, std::string body, bool keep_alive,
               const std::string& content_type = "application/json") {
    auto res =
        std::make_shared<http::response<http::string_body>>(static_cast<http::status>(status), 11);
    res->set(http::field::content_type, content_type);
    res->keep_alive(keep_alive);
    res->body() = std::move(body);
    res->prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(kIoTimeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec) return;
                        if (res->keep_alive()) {
                          self->read();
                        } else {
                          self->shutdown();
                        }
                      });
  }

  void shutdown() {
    beast::get_lowest_layer(stream_).expires_after(5s);
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) {});
  }

  std::shared_ptr<asio::ssl::context> ctx_;  // outlives stream_
  beast::ssl_stream<beast::tcp_stream> stream_;
  const Options& options_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

class Server {
 public:
  Server(asio::io_context& io, tcp::acceptor acceptor, CertStore& certs, const Options& options)
      : io_(io), acceptor_(std::move(acceptor)), certs_(certs), options_(options), timer_(io) {}

  void start() {
    accept();
    watch();
  }

  void stop() {
    beast::error_code ec;
    acceptor_.close(ec);
    timer_.cancel();
  }

 private:
  void accept() {
    acceptor_.async_accept(io_, [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) std::make_shared<Session>(std::move(s), certs_.current(), options_)->start();
      accept();
    });
  }

  void watch() {
    timer_.expires_after(1s);
    timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      certs_.check();
      watch();
    });
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  CertStore& certs_;
  const Options& options_;
  asio::steady_timer timer_;
};

}  // namespace

int run_webhook(const WebhookOptions& options) {
  std::string why;
  auto address = config::parse_address(options.listen, why);
  if (!address) {
    spdlog::error("webhook: --listen {}: {}", options.listen, why);
    return 64;
  }
  CertStore certs(options.cert_file, options.key_file);
  if (!certs.load(why)) {
    spdlog::error("webhook: {}", why);
    return 64;
  }
  asio::io_context io(1);
  tcp::acceptor acceptor(io);
  try {
    tcp::endpoint endpoint(asio::ip::make_address(address->host), address->port);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen();
  } catch (const boost::system::system_error& e) {
    spdlog::error("webhook: cannot listen on {}: {}", options.listen, e.what());
    return 70;
  }
  const auto bound = acceptor.local_endpoint();
  const std::string bound_text =
      fmt::format("{}:{}",
                  bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                          : bound.address().to_string(),
                  bound.port());
  Server server(io, std::move(acceptor), certs, options.inject);
  server.start();
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("webhook: signal {}, stopping", sig);
    server.stop();
    io.stop();
  });
  if (!options.address_path.empty()) {
    // Written whole, then renamed: a reader never sees half an address.
    const std::string tmp = options.address_path + ".tmp";
    std::ofstream(tmp) << bound_text << "\n";
    std::rename(tmp.c_str(), options.address_path.c_str());
  }
  spdlog::info("webhook: listening on https://{} (POST /inject, GET /ready)", bound_text);
  io.run();
  return 0;
}

}  // namespace sidecar::k8s
