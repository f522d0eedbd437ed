#include "filters/rate_limit/redis_client.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

namespace sidecar::filters::rate_limit {
namespace {

constexpr auto kReconnectDelay = std::chrono::milliseconds(200);

// One hiredis connection and its Asio adapter.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  explicit Connection(boost::asio::io_context& io) : io_(io), fd_(io) {}
  ~Connection() {
    if (ac_ != nullptr) redisAsyncFree(ac_);  // calls cleanup(): fd_ released
  }

  bool connect(const config::Address& a) {
    ac_ = redisAsyncConnect(a.host.c_str(), a.port);
    if (ac_ == nullptr) return false;
    if (ac_->err) {
      redisAsyncFree(ac_);
      ac_ = nullptr;
      return false;
    }
    ac_->data = this;
    fd_.assign(ac_->c.fd);
    ac_->ev.data = this;
    ac_->ev.addRead = [](void* p) { static_cast<Connection*>(p)->want(true, true); };
    ac_->ev.delRead = [](void* p) { static_cast<Connection*>(p)->want_read_ = false; };
    ac_->ev.addWrite = [](void* p) { static_cast<Connection*>(p)->want(false, true); };
    ac_->ev.delWrite = [](void* p) { static_cast<Connection*>(p)->want_write_ = false; };
    ac_->ev.cleanup = [](void* p) { static_cast<Connection*>(p)->cleanup(); };
    redisAsyncSetConnectCallback(ac_, [](const redisAsyncContext* ac, int status) {
      if (status != REDIS_OK) static_cast<Connection*>(ac->data)->dead_ = true;
    });
    redisAsyncSetDisconnectCallback(ac_, [](const redisAsyncContext* ac, int) {
      static_cast<Connection*>(ac->data)->dead_ = true;
    });
    return true;
  }

  bool dead() const { return dead_ || ac_ == nullptr; }
  // The event loop is going away: pending commands are dropped unanswered
  // (their streams are being destroyed too).
  void quiet() { quiet_ = true; }

  // False when hiredis refused the command (the connection is failing).
  bool send(const std::vector<std::string>& args, RedisClient::Done* done) {
    if (dead()) return false;
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return redisAsyncCommandArgv(ac_, &Connection::on_reply, done, static_cast<int>(args.size()),
                                 argv.data(), lens.data()) == REDIS_OK;
  }

 private:
  static void on_reply(redisAsyncContext* ac, void* r, void* privdata) {
    std::unique_ptr<RedisClient::Done> done(static_cast<RedisClient::Done*>(privdata));
    if (static_cast<Connection*>(ac->data)->quiet_) return;
    RedisReply out;
    auto* reply = static_cast<redisReply*>(r);
    if (reply == nullptr) {
      out.error = "connection lost";
    } else if (reply->type == REDIS_REPLY_ERROR) {
      out.error.assign(reply->str, reply->len);
    } else if (reply->type == REDIS_REPLY_INTEGER) {
      out.ok = true;
      out.ints.push_back(reply->integer);
    } else if (reply->type == REDIS_REPLY_ARRAY) {
      out.ok = true;
      for (size_t i = 0; i < reply->elements; ++i) {
        const redisReply* e = reply->element[i];
        out.ints.push_back(e->type == REDIS_REPLY_INTEGER ? e->integer : 0);
      }
    } else {
      out.ok = true;
    }
    // Never inside the caller's command(): the reply arrives from the event loop.
    (*done)(std::move(out));
  }

  void want(bool read, bool on) {
    (read ? want_read_ : want_write_) = on;
    arm(read);
  }

  void arm(bool read) {
    bool& waiting = read ? reading_ : writing_;
    if (waiting || ac_ == nullptr) return;
    waiting = true;
    fd_.async_wait(read ? boost::asio::posix::descriptor_base::wait_read
                        : boost::asio::posix::descriptor_base::wait_write,
                   [self = shared_from_this(), read](const boost::system::error_code& ec) {
                     (read ? self->reading_ : self->writing_) = false;
                     if (ec || self->ac_ == nullptr) return;
                     if (!(read ? self->want_read_ : self->want_write_)) return;
                     if (read) {
                       redisAsyncHandleRead(self->ac_);
                     } else {
                       redisAsyncHandleWrite(self->ac_);
                     }
                     // hiredis may have freed the context (cleanup ran).
                     if (self->ac_ != nullptr && (read ? self->want_read_ : self->want_write_))
                       self->arm(read);
                   });
  }

  void cleanup() {
    // hiredis closes the descriptor itself: let go of it without closing.
    ac_ = nullptr;
    dead_ = true;
    want_read_ = want_write_ = false;
    if (fd_.is_open()) {
      boost::system::error_code ignored;
      fd_.cancel(ignored);
      fd_.release();
    }
  }

  boost::asio::io_context& io_;
  boost::asio::posix::stream_descriptor fd_;
  redisAsyncContext* ac_ = nullptr;
  bool want_read_ = false, want_write_ = false, reading_ = false, writing_ = false;
  bool dead_ = false;
  bool quiet_ = false;
};

class Client : public RedisClient {
 public:
  Client(boost::asio::io_context& io, config::Address address)
      : io_(io), address_(std::move(address)) {}
  ~Client() = default;

  void command(std::vector<std::string> args, Done done) override {
    auto* d = new Done(std::move(done));
    if (!connection_ || connection_->dead()) {
      connection_.reset();
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_attempt_) {
        next_attempt_ = now + kReconnectDelay;
        auto c = std::make_shared<Connection>(io_);
        if (c->connect(address_)) connection_ = std::move(c);
      }
    }
    if (connection_ && connection_->send(args, d)) return;
    // Not sent: answered from the event loop, never from inside command().
    std::shared_ptr<Done> owned(d);  // freed even if the loop ends first
    boost::asio::post(io_, [owned] { (*owned)(RedisReply{false, "redis unavailable", {}}); });
  }

  void reset() override { connection_.reset(); }
  void shutdown() {
    if (connection_) connection_->quiet();
    connection_.reset();
  }

 private:
  boost::asio::io_context& io_;
  const config::Address address_;
  std::shared_ptr<Connection> connection_;
  std::chrono::steady_clock::time_point next_attempt_{};
};

// The clients of one io_context; destroyed with it.
class Service : public boost::asio::execution_context::service {
 public:
  using key_type = Service;
  static inline boost::asio::execution_context::id id;
  explicit Service(boost::asio::execution_context& ctx)
      : boost::asio::execution_context::service(ctx) {}
  void shutdown() override {
    for (auto& [k, c] : clients_) c->shutdown();
  }
  Client& get(boost::asio::io_context& io, const config::Address& a) {
    auto& slot = clients_[a.to_string()];
    if (!slot) slot = std::make_unique<Client>(io, a);
    return *slot;
  }

 private:
  std::map<std::string, std::unique_ptr<Client>> clients_;
};

}  // namespace

RedisClient& RedisClient::of(boost::asio::io_context& io, const config::Address& address) {
  return boost::asio::use_service<Service>(io).get(io, address);
}

}  // namespace sidecar::filters::rate_limit
