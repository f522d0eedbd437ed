// A worker's connection to Redis for the `rate_limit` filter: hiredis's
// asynchronous API driven by the worker's io_context (an Asio adapter for
// hiredis's read/write hooks), so a Redis round trip never blocks the
// worker.
//
// One connection per (io_context, address), owned by an Asio service of
// that io_context: it lives as long as the worker's event loop and is
// freed with it. Commands are pipelined on the connection (hiredis queues
// them while it connects). A connection that fails is dropped; the next
// command reconnects, at most once per `kReconnectDelay`, failing at once
// in between. Deadlines are the caller's (the filter's timer).
//
// Thread safety: everything runs on the io_context's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace boost::asio {
class io_context;
}

namespace sidecar::filters::rate_limit {

// A reply, reduced to what the rate limit's script returns.
struct RedisReply {
  bool ok = false;            // false: no answer (connection) or a Redis error
  std::string error;          // when !ok
  std::vector<int64_t> ints;  // an array of integers (or one integer)
};

class RedisClient {
 public:
  using Done = std::function<void(RedisReply)>;
  // The client of `io` for `address`, created on first use.
  static RedisClient& of(boost::asio::io_context& io, const config::Address& address);
  // Sends a command (arguments as given); `done` runs once on the io
  // thread, never inside command(), unless the client is destroyed first
  // (then never: the worker is going away).
  virtual void command(std::vector<std::string> args, Done done) = 0;
  // Drops the connection (after a command timed out: a Redis that does not
  // answer must not collect callbacks); its pending commands get a failed
  // reply. The next command reconnects.
  virtual void reset() = 0;

 protected:
  ~RedisClient() = default;
};

}  // namespace sidecar::filters::rate_limit
