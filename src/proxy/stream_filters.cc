// The stream's side of the HTTP filter chain: running the listener's
// filters over a request and its response, and the http::FilterCallbacks
// they call.
#include "core/coarse_clock.h"
#include "http/local_reply.h"
#include "proxy/route_action.h"
#include "proxy/stream.h"
#include "proxy/worker.h"

namespace sidecar::proxy {

// ---- filters ----

bool Stream::run_request_filters(size_t from) {
  if (filters_listener_ != listener_) {
    // First request, or a new config for this listener: new instances.
    filters_.clear();
    wants_request_data_ = wants_response_data_ = false;
    for (const auto& factory : listener_->filters) {
      filters_.push_back(factory->create());
      wants_request_data_ = wants_request_data_ || filters_.back()->wants_request_data();
      wants_response_data_ = wants_response_data_ || filters_.back()->wants_response_data();
    }
    filters_listener_ = listener_;
  }
  for (size_t i = from; i < filters_.size(); ++i) {
    filter_reply_status_ = 0;
    filter_response_.reset();
    continue_pending_ = false;
    in_filters_ = true;
    const http::FilterStatus st = filters_[i]->on_request_headers(*this);
    in_filters_ = false;
    if (filter_response_) {
      send_filter_response();
      return false;
    }
    if (filter_reply_status_ != 0) {
      local_reply(filter_reply_status_, filter_reply_body_, false);
      return false;
    }
    if (buffer_requested_) {
      // The filter waits for the body (buffer_request_body).
      start_buffering(i);
      return false;
    }
    if (st == http::FilterStatus::kContinue || continue_pending_) continue;
    filters_paused_at_ = i;  // waiting for continue_request() or an answer
    return false;
  }
  return true;
}

void Stream::continue_request() {
  if (in_filters_) {
    continue_pending_ = true;
    return;
  }
  if (!active_ || filters_paused_at_ == SIZE_MAX) return;
  const size_t next = filters_paused_at_ + 1;
  filters_paused_at_ = SIZE_MAX;
  last_activity_ = core::CoarseClock::now();
  if (run_request_filters(next)) forward();
}

void Stream::filter_local_reply(int status, std::string_view content_type, size_t body_size) {
  resp_add_.clear();
  resp_remove_.clear();
  if (filters_listener_ != listener_ || filters_.empty()) return;
  // A head for the response hooks: what the proxy is about to write.
  static thread_local http::ResponseHead head;
  static thread_local std::string length;
  static thread_local std::string type;
  head.clear();
  head.status = static_cast<uint16_t>(status);
  type.assign(content_type);
  length = std::to_string(body_size);
  if (!type.empty()) head.headers.push_back({"content-type", type, 0, 0});
  head.headers.push_back({"content-length", length, 0, 0});
  // Inside the hooks an answer is recorded, not sent (local_reply sends a
  // send_response() in its place; a send_local_reply() is ignored).
  const bool was_in_filters = in_filters_;
  in_filters_ = true;
  for (auto it = filters_.rbegin(); it != filters_.rend(); ++it) {
    (*it)->on_response_headers(head, *this);
  }
  in_filters_ = was_in_filters;
  filter_reply_status_ = 0;
}

void Stream::buffer_request_body(size_t max_bytes) {
  if (!in_filters_ || !active_) return;
  buffer_requested_ = true;
  buffer_limit_ = max_bytes;
}

void Stream::filters_request_data(Spans& data, bool end) {
  in_filters_ = true;
  for (auto& f : filters_) {
    if (f->wants_request_data()) f->on_request_data(data, end, *this);
  }
  in_filters_ = false;
}

bool Stream::data_hook_answered() {
  if (filter_reply_status_ == 0) return false;
  const int status = filter_reply_status_;
  filter_reply_status_ = 0;
  filters_paused_at_ = SIZE_MAX;
  local_reply(status, filter_reply_body_, true);
  return true;
}

bool Stream::filters_response_trailers(const Trailers& trailers) {
  bool taken = false;
  for (auto it = filters_.rbegin(); it != filters_.rend() && !taken; ++it) {
    if ((*it)->wants_response_data()) taken = (*it)->on_response_trailers(trailers, *this);
  }
  return taken;
}

void Stream::filters_response_data(Spans& data, bool end) {
  in_filters_ = true;
  for (auto it = filters_.rbegin(); it != filters_.rend(); ++it) {
    if ((*it)->wants_response_data()) (*it)->on_response_data(data, end, *this);
  }
  in_filters_ = false;
}

void Stream::end_filters() {
  filters_paused_at_ = SIZE_MAX;
  buffering_ = buffer_requested_ = false;
  if (filters_listener_ != listener_) return;
  for (auto& f : filters_) f->on_stream_end();
}

bool Stream::listed(const std::vector<std::string>& names, std::string_view name) {
  for (const std::string& n : names) {
    if (http::iequals(n, name)) return true;
  }
  return false;
}

std::chrono::system_clock::time_point Stream::start_time() const {
  // req_start_ is the monotonic clock: the wall clock now, minus the time since.
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(
      std::chrono::system_clock::now() -
      std::chrono::duration_cast<std::chrono::system_clock::duration>(Clock::now() - req_start_));
}

void Stream::add_request_header(std::string_view name, std::string_view value) {
  req_add_.append(name).append(": ").append(value).append("\r\n");
}

void Stream::remove_request_header(std::string_view name) { req_remove_.emplace_back(name); }

void Stream::add_response_header(std::string_view name, std::string_view value) {
  resp_add_.append(name).append(": ").append(value).append("\r\n");
}

void Stream::remove_response_header(std::string_view name) { resp_remove_.emplace_back(name); }

void Stream::send_local_reply(int status, std::string_view body) {
  // From a body hook after the response started: recorded, and the stream
  // is reset (data_hook_answered).
  if (!active_ || (resp_started_ && !in_filters_)) return;
  // Inside a hook: recorded, and sent once the filter has returned (no
  // reentry into it). Later (an asynchronous answer): sent now.
  filter_reply_status_ = status;
  filter_reply_body_.assign(body);
  if (in_filters_) return;
  filters_paused_at_ = SIZE_MAX;
  filter_reply_status_ = 0;
  local_reply(status, filter_reply_body_, false);
}

void Stream::send_response(http::LocalResponse response) {
  if (!active_ || resp_started_) return;
  filter_response_ = std::move(response);
  if (in_filters_) return;
  filters_paused_at_ = SIZE_MAX;
  send_filter_response();
}

void Stream::set_request_path(std::string_view path) {
  path_override_.assign(path);
  path_overridden_ = true;
}

std::string_view Stream::path() const {
  if (path_overridden_) return path_override_;
  return path_slash_first_ ? std::string_view(route_path_) : path_;
}

std::string_view Stream::authority() const {
  return authority_.empty() ? req_->host() : authority_;
}

uint16_t Stream::local_port() const {
  // The configured port; a listener configured with port 0 asks its acceptor.
  const uint16_t port = listener_->config->address.port;
  return port != 0 ? port : info_->worker->listener_port(listener_->config->name);
}

std::string_view Stream::route_name() const {
  return route_ != nullptr ? std::string_view(route_->config->name) : std::string_view();
}

const void* Stream::route_config(std::string_view name) const {
  if (route_ == nullptr) return nullptr;
  for (const config::FilterConfig& f : route_->config->per_filter_config) {
    if (f.name == name) return f.typed.get();
  }
  return nullptr;
}

boost::asio::io_context& Stream::io() { return info_->worker->io(); }

http::AsyncClient& Stream::http_client() { return info_->worker->http_client(); }

std::string_view Stream::route_cluster() {
  if (route_ == nullptr || route_->config->redirect || route_->config->direct_response) return {};
  if (cluster_index_ < 0) select_cluster();
  return cluster_name();
}

http::ClientRequest Stream::upstream_request() {
  http::ClientRequest c;
  copy_request_head(c, req_add_);
  if (route_ == nullptr) return c;
  const config::Route& r = *route_->config;
  // The route's rewrite, unless forward() has applied it already.
  if (std::string p; attempts_ == 0 && rewrite_path(r, c.path, p)) c.path = std::move(p);
  if (!r.host_rewrite.empty()) {
    c.authority = r.host_rewrite;
  } else if (r.auto_host_rewrite) {
    c.authority.clear();  // the endpoint's
  }
  c.timeout = r.timeout.count() > 0
                  ? std::chrono::duration_cast<std::chrono::milliseconds>(r.timeout)
                  : std::chrono::milliseconds(15000);
  return c;
}

void Stream::copy_request_head(http::ClientRequest& c, std::string_view extra) const {
  const http::RequestHead& r = *req_;
  c.method.assign(r.method_name);
  c.path.assign(path());
  c.authority.assign(authority());
  const http::HopByHop hop_by_hop(r);
  for (const http::HeaderField& f : r.headers) {
    if (hop_by_hop(f.name) || http::iequals(f.name, "host") ||
        http::iequals(f.name, "content-length") || http::iequals(f.name, "expect") ||
        (!req_remove_.empty() && listed(req_remove_, f.name))) {
      continue;
    }
    c.headers.emplace_back(f.name, f.value);
  }
  http::for_each_field_line(extra, [&](std::string_view name, std::string_view value) {
    c.headers.emplace_back(name, value);
  });
}

void Stream::set_metadata(std::string_view key, std::string_view value) {
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v.assign(value);
      return;
    }
  }
  metadata_.emplace_back(key, value);
}

std::optional<std::string_view> Stream::metadata(std::string_view key) const {
  for (const auto& [k, v] : metadata_) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

}  // namespace sidecar::proxy
