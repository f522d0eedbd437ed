#include "accesslog/writer.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <system_error>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/json.h"

namespace sidecar::accesslog {
namespace {

constexpr auto kPeriod = std::chrono::milliseconds(100);
constexpr size_t kFlushBytes = 256 * 1024;

using Kind = config::LogToken::Kind;

bool numeric(Kind k) {
  switch (k) {
    case Kind::kResponseCode:
    case Kind::kBytesReceived:
    case Kind::kBytesSent:
    case Kind::kDuration:
    case Kind::kUpstreamServiceTime:
    case Kind::kUpstreamRequestAttemptCount:
    case Kind::kGrpcStatusNumber:
      return true;
    default:
      return false;
  }
}

void append_ms(std::string& out, uint64_t us) {
  fmt::format_to(std::back_inserter(out), "{}.{:03}", us / 1000, us % 1000);
}

// gRPC status names (grpc/include/grpcpp/impl/codegen/status_code_enum.h),
// as Envoy's %GRPC_STATUS% writes them.
constexpr std::string_view kGrpcSnake[] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};
constexpr std::string_view kGrpcCamel[] = {
    "Ok",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

std::string_view grpc_status_snake(int code) { return kGrpcSnake[code]; }
std::string_view grpc_status_camel(int code) { return kGrpcCamel[code]; }

}  // namespace

Formatter::Formatter(const config::AccessLog& config) : config_(config) {}

// Appends the token's value; returns nothing for "absent" by leaving `out`
// unchanged (the caller then writes "-" or null).
void Formatter::render(const config::LogToken& t, const Entry& e, std::string& out,
                       bool json) const {
  auto text = [&](std::string_view v) {
    if (t.max_length != 0 && v.size() > t.max_length) v = v.substr(0, t.max_length);
    if (json) {
      // Escaped without the quotes: the caller quotes the whole value.
      std::string quoted;
      core::append_json_string(quoted, v);
      out.append(quoted, 1, quoted.size() - 2);
    } else {
      out.append(v);
    }
  };
  auto header = [&](const std::vector<std::string>& names,
                    const std::vector<std::string_view>& values,
                    const std::string& name) -> std::string_view {
    for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
      if (names[i] == name) return values[i];
    }
    return {};
  };
  switch (t.kind) {
    case Kind::kLiteral:
      text(t.text);
      break;
    case Kind::kStartTime:
      config::append_start_time(out, e.start_time_us);
      break;
    case Kind::kMethod:
      text(e.method);
      break;
    case Kind::kPath:
      text(e.path);
      break;
    case Kind::kAuthority:
      text(e.authority);
      break;
    case Kind::kScheme:
      if (e.version_minor == Entry::kNotHttp) break;
      out.append(e.tls_version.empty() ? "http" : "https");
      break;
    case Kind::kRequestHeader:
    case Kind::kResponseHeader: {
      const bool req = t.kind == Kind::kRequestHeader;
      const auto& names = req ? config_.request_headers : config_.response_headers;
      const auto& values = req ? e.request_headers : e.response_headers;
      std::string_view v = header(names, values, t.text);
      if (v.empty() && !t.fallback.empty()) v = header(names, values, t.fallback);
      text(v);
      break;
    }
    case Kind::kProtocol:
      if (e.version_minor == Entry::kNotHttp) break;
      out.append(e.version_minor == 0 ? "HTTP/1.0" : e.version_minor == 2 ? "HTTP/2" : "HTTP/1.1");
      break;
    case Kind::kResponseCode:
      fmt::format_to(std::back_inserter(out), "{}", e.status);
      break;
    case Kind::kResponseFlags:
      append_flags(out, e.flags);
      break;
    case Kind::kBytesReceived:
      fmt::format_to(std::back_inserter(out), "{}", e.bytes_received);
      break;
    case Kind::kBytesSent:
      fmt::format_to(std::back_inserter(out), "{}", e.bytes_sent);
      break;
    case Kind::kDuration:
      if (e.duration_us != Entry::kNone) append_ms(out, e.duration_us);
      break;
    case Kind::kUpstreamServiceTime:
      if (e.upstream_us != Entry::kNone) append_ms(out, e.upstream_us);
      break;
    case Kind::kUpstreamHost:
      text(e.upstream_host);
      break;
    case Kind::kUpstreamRequestAttemptCount:
      fmt::format_to(std::back_inserter(out), "{}", e.attempt_count);
      break;
    case Kind::kUpstreamCluster:
      text(e.cluster);
      break;
    case Kind::kRouteName:
      text(e.route);
      break;
    case Kind::kListenerName:
      text(e.listener);
      break;
    case Kind::kDownstreamRemoteAddress:
      text(e.remote_address);
      break;
    case Kind::kDownstreamTlsVersion:
      text(e.tls_version);
      break;
    case Kind::kDownstreamPeerSubject:
      text(e.peer_subject);
      break;
    case Kind::kDownstreamPeerUriSan:
      text(e.peer_uri_san);
      break;
    case Kind::kRequestedServerName:
      text(e.requested_server_name);
      break;
    case Kind::kResponseCodeDetails:
      text(e.response_code_details);
      break;
    case Kind::kTraceId:
      text(e.trace_id);
      break;
    case Kind::kGrpcStatus:
      if (e.grpc_status >= 0 && e.grpc_status <= 16) {
        out.append(t.text.empty() ? grpc_status_camel(e.grpc_status)
                                  : grpc_status_snake(e.grpc_status));
      }
      break;
    case Kind::kGrpcStatusNumber:
      if (e.grpc_status >= 0) fmt::format_to(std::back_inserter(out), "{}", e.grpc_status);
      break;
    case Kind::kHostname:
      text(config::host_name());
      break;
    case Kind::kDownstreamRemoteAddressWithoutPort: {
      std::string_view a = e.remote_address;
      const size_t colon = a.rfind(':');
      if (colon != std::string_view::npos) a = a.substr(0, colon);
      if (a.size() > 2 && a.front() == '[') a = a.substr(1, a.size() - 2);
      text(a);
      break;
    }
  }
}

void Formatter::format(const Entry& e, std::string& out) const {
  if (!config_.json) {
    for (const config::LogToken& t : config_.fields.front().tokens) {
      const size_t before = out.size();
      render(t, e, out, false);
      if (out.size() == before && t.kind != Kind::kLiteral) out += '-';
    }
    out += '\n';
    return;
  }
  out += '{';
  bool first = true;
  for (const config::LogField& f : config_.fields) {
    if (!first) out += ',';
    first = false;
    core::append_json_string(out, f.key);
    out += ':';
    // A value that is one numeric operator is a JSON number.
    if (f.tokens.size() == 1 && numeric(f.tokens[0].kind)) {
      const size_t before = out.size();
      render(f.tokens[0], e, out, true);
      if (out.size() == before) out.append("null");
      continue;
    }
    const size_t before = out.size();
    out += '"';
    bool any = false;
    for (const config::LogToken& t : f.tokens) {
      const size_t at = out.size();
      render(t, e, out, true);
      any = any || out.size() != at || t.kind == Kind::kLiteral;
    }
    if (!any) {
      out.resize(before);
      out.append("null");
    } else {
      out += '"';
    }
  }
  out.append("}\n");
}

Writer::Writer(const config::AccessLog& config, unsigned workers)
    : config_(config), formatter_(config) {
  for (unsigned i = 0; i < workers; ++i)
    rings_.push_back(std::make_unique<Ring>(config.buffer_size));
  open_output();
  out_.reserve(kFlushBytes + 64 * 1024);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "access-log");
    run();
  });
}

Writer::~Writer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
  if (own_fd_) ::close(fd_);
}

void Writer::open_output() {
  if (config_.path == "stdout") {
    fd_ = 1;
    return;
  }
  if (config_.path == "stderr") {
    fd_ = 2;
    return;
  }
  const int fd = ::open(config_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (own_fd_) return;  // a failed reopen keeps the old file
    throw std::system_error(errno, std::generic_category(),
                            fmt::format("cannot open access log {}", config_.path));
  }
  if (own_fd_) ::close(fd_);
  fd_ = fd;
  own_fd_ = true;
}

void Writer::wake() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    woken_ = true;
  }
  cv_.notify_one();
}

void Writer::reopen() {
  reopen_.store(true, std::memory_order_relaxed);
  wake();
}

void Writer::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    cv_.wait_for(lock, kPeriod, [this] { return stop_ || woken_; });
    const bool stopping = stop_;
    woken_ = false;
    lock.unlock();
    if (reopen_.exchange(false) && own_fd_) {
      flush();
      open_output();
    }
    drain();
    lock.lock();
    if (stopping) return;
  }
}

void Writer::drain() {
  for (auto& ring : rings_) {
    size_t size = 0;
    while (const char* p = ring->peek(size)) {
      if (decode(p, size, entry_)) formatter_.format(entry_, out_);
      ring->release();
      if (out_.size() >= kFlushBytes) flush();
    }
  }
  flush();
}

void Writer::flush() {
  size_t done = 0;
  while (done < out_.size()) {
    const ssize_t n = ::write(fd_, out_.data() + done, out_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const uint64_t errors = write_errors_.fetch_add(1, std::memory_order_relaxed);
      if (errors == 0 || errors % 1000 == 0) {
        spdlog::error("access log {}: write failed: {} ({} bytes lost)", config_.path,
                      std::strerror(errno), out_.size() - done);
      }
      break;
    }
    done += static_cast<size_t>(n);
  }
  out_.clear();
}

}  // namespace sidecar::accesslog
