// HTTP filters: per-listener processing steps between the codec and the
// router (DESIGN.md "Data path").
//
// A filter has two parts. Its factory is built once per config snapshot from
// the filter's parsed config: immutable, shared by all workers. Its instance
// belongs to one downstream connection (on one worker) and sees that
// connection's requests one after the other; it keeps no state between
// requests unless it means to.
//
// Request heads go through the filters in config order, response heads in
// reverse order. A filter returns kContinue, or answers the request itself
// with send_local_reply() and returns kStopIteration (the rest of the chain
// and the upstream are skipped). Heads are not copied: filters read the
// parsed head and ask for fields to be added or removed, which is applied
// when the head is written out.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "http/http1_parser.h"

namespace sidecar::http {

enum class FilterStatus { kContinue, kStopIteration };

// What a filter can see and do. Implemented by the connection.
class FilterCallbacks {
 public:
  virtual const RequestHead& request() const = 0;
  // Adds a field line to the request sent upstream (after the received ones).
  virtual void add_request_header(std::string_view name, std::string_view value) = 0;
  // Drops every received request field called `name` (case-insensitive).
  virtual void remove_request_header(std::string_view name) = 0;
  // The same for the response sent downstream (only in on_response_headers).
  virtual void add_response_header(std::string_view name, std::string_view value) = 0;
  virtual void remove_response_header(std::string_view name) = 0;
  // Answers the request with `status` and a text/plain `body`.
  virtual void send_local_reply(int status, std::string_view body) = 0;

 protected:
  ~FilterCallbacks() = default;
};

class HttpFilter {
 public:
  virtual ~HttpFilter() = default;
  virtual FilterStatus on_request_headers(FilterCallbacks& callbacks) {
    return FilterStatus::kContinue;
  }
  virtual void on_response_headers(const ResponseHead& response, FilterCallbacks& callbacks) {}
};

class HttpFilterFactory {
 public:
  virtual ~HttpFilterFactory() = default;
  // A new instance for one connection. Thread-safe.
  virtual std::unique_ptr<HttpFilter> create() const = 0;
};

}  // namespace sidecar::http
