// The output base (backoff, dead letters, shared encodings) and the stream
// outputs: tcp, udp, syslog (TCP with octet counting, or UDP), file, stdout.
#include "logship/output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include <fmt/format.h>
#include <re2/re2.h>
#include <spdlog/spdlog.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/write.hpp>

namespace sidecar::logship {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Output::Output(const OutputConfig& config, Pipeline& pipeline, OutputBuffer& buffer)
    : config_(config),
      pipeline_(pipeline),
      buffer_(buffer),
      retry_timer_(pipeline.io()),
      random_(std::random_device{}() | 1) {
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  hostname_ = config.syslog_hostname.empty() ? host : config.syslog_hostname;
  if (hostname_.empty()) hostname_ = "-";
}

Output::~Output() {
  if (dead_letter_fd_ >= 0) ::close(dead_letter_fd_);
}

void Output::shutdown() {
  stopped_ = true;
  retry_timer_.cancel();
}

bool Output::wants(const Batch& b, const Record& r, std::string& scratch) const {
  if (!config_.where_regex) return true;
  const Field* f = b.find(r, config_.where_field);
  if (f == nullptr) return false;
  const std::string_view v = b.text(*f, scratch);
  return re2::RE2::PartialMatch(re2::StringPiece(v.data(), v.size()), *config_.where_regex);
}

void Output::encode_json(const Batch& b, const Record& r, std::string& out) const {
  if (config_.time_key.empty() && config_.tag_key.empty()) {
    append_json(out, b, r);
    return;
  }
  std::string time;
  std::vector<std::pair<std::string_view, std::string_view>> extra;
  if (!config_.time_key.empty()) {
    append_rfc3339(time, r.time_ns);
    extra.emplace_back(config_.time_key, time);
  }
  if (!config_.tag_key.empty()) extra.emplace_back(config_.tag_key, b.tag);
  append_json(out, b, r, extra);
}

void Output::encode_raw(const Batch& b, const Record& r, std::string& out,
                        std::string& scratch) const {
  if (const Field* f = b.find(r, config_.message_key)) {
    if (f->kind == ValueKind::kString || f->kind == ValueKind::kEscaped) {
      out.append(b.text(*f, scratch));
      return;
    }
  }
  encode_json(b, r, out);
}

void Output::retry_later(std::function<void()> fn) {
  bump(counters_.retries);
  const auto initial = config_.retry.initial_backoff.count();
  const auto max = std::max(config_.retry.max_backoff.count(), initial);
  int64_t delay = initial;
  for (uint32_t i = 0; i < attempt_ && delay < max; ++i) delay *= 2;
  delay = std::min<int64_t>(delay, max);
  // Jitter: between half and all of the delay, so that many sidecars that
  // lost the same collector do not come back in step.
  random_ ^= random_ << 13;
  random_ ^= random_ >> 7;
  random_ ^= random_ << 17;
  delay = delay / 2 + static_cast<int64_t>(random_ % static_cast<uint64_t>(delay / 2 + 1));
  ++attempt_;
  retry_timer_.expires_after(std::chrono::milliseconds(delay));
  retry_timer_.async_wait([this, fn = std::move(fn)](const boost::system::error_code& ec) {
    if (!ec && !stopped_) fn();
  });
}

bool Output::give_up(size_t batches) {
  if (config_.retry.max_retries == 0 || attempt_ <= config_.retry.max_retries) return false;
  uint64_t records = 0;
  for (size_t i = 0; i < batches; ++i) {
    if (auto b = buffer_.peek(i)) records += b->records.size();
  }
  spdlog::warn("logs: output {} gave up on {} records after {} retries: {}", config_.name, records,
               config_.retry.max_retries, last_error_);
  bump(counters_.dropped_retries, records);
  buffer_.pop(batches);
  attempt_ = 0;
  return true;
}

void Output::dead_letter(const Batch& b, const Record& r, int status, std::string_view reason) {
  bump(counters_.dead_letter);
  if (dead_letter_fd_ < 0) {
    const std::string dir = pipeline_.state().dir() + "/dead_letter";
    make_dirs(dir);
    const std::string path = dir + "/" + config_.name + ".ndjson";
    dead_letter_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (dead_letter_fd_ < 0) {
      spdlog::warn("logs: cannot open {}: {}", path, std::strerror(errno));
      return;
    }
  }
  std::string line = "{\"time\":\"";
  append_rfc3339(line, pipeline_.now_ns());
  line += "\",\"output\":\"";
  append_escaped(line, config_.name);
  line += fmt::format("\",\"status\":{},\"reason\":\"", status);
  std::string safe;
  append_utf8_replacing(safe, reason.substr(0, 2048));
  append_escaped(line, safe);
  line += "\",\"record\":";
  encode_json(b, r, line);
  line += "}\n";
  if (::write(dead_letter_fd_, line.data(), line.size()) < 0) {
    spdlog::warn("logs: dead letter write failed: {}", std::strerror(errno));
  }
}

void Output::fail(std::string error) {
  if (error != last_error_) spdlog::warn("logs: output {}: {}", config_.name, error);
  bump(counters_.errors);
  last_error_ = std::move(error);
  connected_ = false;
}

void Output::succeeded(size_t batches, uint64_t records, uint64_t bytes) {
  bump(counters_.sent, records);
  bump(counters_.bytes, bytes);
  buffer_.pop(batches);
  reset_backoff();
  pipeline_.on_output_progress();
}

namespace {

int severity_of(std::string_view level) {
  // RFC 5424 6.2.1 table 2.
  std::string l;
  for (char c : level.substr(0, 16)) l += static_cast<char>(std::tolower(c));
  if (l.size() == 1 && l[0] >= '0' && l[0] <= '7') return l[0] - '0';
  if (l.starts_with("emerg") || l == "panic" || l == "fatal") return 0;
  if (l == "alert") return 1;
  if (l.starts_with("crit")) return 2;
  if (l.starts_with("err")) return 3;
  if (l.starts_with("warn")) return 4;
  if (l == "notice") return 5;
  if (l.starts_with("debug") || l == "trace") return 7;
  return 6;  // informational
}

// RFC 5424 6.2: printable US-ASCII without spaces, limited length; "-" when empty.
void append_header_field(std::string& out, std::string_view v, size_t max) {
  size_t n = 0;
  for (char c : v) {
    if (n == max) break;
    if (c > 32 && c < 127) {
      out += c;
      ++n;
    }
  }
  if (n == 0) out += '-';
}

}  // namespace

void encode_syslog(const OutputConfig& config, const std::string& hostname, const Batch& b,
                   const Record& r, const std::string& message, std::string& out) {
  std::string scratch;
  int severity = 6;
  if (!config.severity_key.empty()) {
    if (const Field* f = b.find(r, config.severity_key))
      severity = severity_of(b.text(*f, scratch));
  }
  out += fmt::format("<{}>1 ", config.syslog_facility * 8 + static_cast<uint32_t>(severity));
  // TIME-SECFRAC has at most 6 digits (RFC 5424 6.2.3).
  std::string time;
  append_rfc3339(time, r.time_ns);
  out.append(time, 0, 26);
  out += "Z ";
  append_header_field(out, hostname, 255);
  out += ' ';
  append_header_field(out, config.syslog_app_name.empty() ? b.tag : config.syslog_app_name, 48);
  out += " - - - ";
  out += message;
}

namespace {

// tcp, udp, syslog, file, stdout: a stream of encoded records.
class StreamOutput final : public Output {
 public:
  StreamOutput(const OutputConfig& config, Pipeline& pipeline, OutputBuffer& buffer)
      : Output(config, pipeline, buffer),
        socket_(pipeline.io()),
        udp_(pipeline.io()),
        resolver_(pipeline.io()),
        connect_timer_(pipeline.io()) {}

  ~StreamOutput() override {
    if (file_fd_ >= 0) ::close(file_fd_);
  }

  void wake() override {
    if (!busy_ && !retry_pending_ && !stopped_) send_next();
  }

  void shutdown() override {
    Output::shutdown();
    boost::system::error_code ec;
    socket_.close(ec);
    udp_.close(ec);
    connect_timer_.cancel();
    resolver_.cancel();
  }

 private:
  bool datagrams() const {
    return config_.kind == OutputConfig::Kind::kUdp ||
           (config_.kind == OutputConfig::Kind::kSyslog && config_.syslog_udp);
  }
  bool stream_socket() const {
    return config_.kind == OutputConfig::Kind::kTcp ||
           (config_.kind == OutputConfig::Kind::kSyslog && !config_.syslog_udp);
  }

  void encode_record(const Batch& b, const Record& r, std::string& out) {
    if (config_.kind == OutputConfig::Kind::kSyslog) {
      message_.clear();
      encode_raw(b, r, message_, scratch_);
      if (datagrams()) {
        encode_syslog(config_, hostname_, b, r, message_, out);
      } else {
        // RFC 6587 3.4.1 octet counting: MSG-LEN SP SYSLOG-MSG.
        frame_.clear();
        encode_syslog(config_, hostname_, b, r, message_, frame_);
        out += std::to_string(frame_.size());
        out += ' ';
        out += frame_;
      }
      return;
    }
    if (config_.format == OutputConfig::Format::kRaw) {
      encode_raw(b, r, out, scratch_);
    } else {
      encode_json(b, r, out);
    }
    if (!datagrams()) out += '\n';
  }

  // Encodes up to ~512 KiB of whole batches into out_ (or datagrams_).
  void encode() {
    out_.clear();
    datagrams_.clear();
    batches_ = 0;
    records_ = 0;
    constexpr size_t kMaxWrite = 512 * 1024;
    while (out_.size() < kMaxWrite) {
      std::shared_ptr<Batch> b = buffer_.peek(batches_);
      if (!b) break;
      ++batches_;
      for (const Record& r : b->records) {
        if (!wants(*b, r, scratch_)) continue;
        ++records_;
        if (datagrams()) {
          datagrams_.emplace_back();
          encode_record(*b, r, datagrams_.back());
          out_.append(datagrams_.back().size() > 0 ? 1 : 0, ' ');  // counts toward the limit
        } else {
          encode_record(*b, r, out_);
        }
      }
    }
    buffer_.set_in_flight(batches_);
  }

  void send_next() {
    if (stopped_) return;
    encode();
    if (batches_ == 0) return;
    busy_ = true;
    switch (config_.kind) {
      case OutputConfig::Kind::kFile:
        write_file();
        return;
      case OutputConfig::Kind::kStdout:
        write_fd(1);
        return;
      default:
        break;
    }
    if (datagrams()) {
      send_datagrams();
    } else if (!socket_.is_open()) {
      connect();
    } else {
      write_socket();
    }
  }

  void done_ok(uint64_t bytes) {
    busy_ = false;
    succeeded(batches_, records_, bytes);
    batches_ = 0;
    send_next();
  }

  void failed(std::string error) {
    busy_ = false;
    fail(std::move(error));
    boost::system::error_code ec;
    socket_.close(ec);
    if (give_up(batches_)) {
      batches_ = 0;
      pipeline_.on_output_progress();
      send_next();
      return;
    }
    retry_pending_ = true;
    retry_later([this] {
      retry_pending_ = false;
      send_next();
    });
  }

  void connect() {
    resolver_.async_resolve(
        config_.host, std::to_string(config_.port),
        [this](const boost::system::error_code& ec, tcp::resolver::results_type results) {
          if (stopped_) return;
          if (ec) return failed(fmt::format("resolve {}: {}", config_.host, ec.message()));
          connect_timer_.expires_after(config_.timeout);
          connect_timer_.async_wait([this](const boost::system::error_code& ec2) {
            if (!ec2) socket_.close();
          });
          asio::async_connect(
              socket_, results, [this](const boost::system::error_code& ec3, const tcp::endpoint&) {
                connect_timer_.cancel();
                if (stopped_) return;
                if (ec3) {
                  return failed(
                      fmt::format("connect {}:{}: {}", config_.host, config_.port, ec3.message()));
                }
                boost::system::error_code ignored;
                socket_.set_option(tcp::no_delay(true), ignored);
                connected_ = true;
                watch_close();
                write_socket();
              });
        });
  }

  // The receiver never sends; a read completing means it closed (or reset):
  // find out now rather than at the next write.
  void watch_close() {
    socket_.async_read_some(asio::buffer(sink_),
                            [this](const boost::system::error_code& ec, size_t) {
                              if (stopped_ || ec == asio::error::operation_aborted) return;
                              if (!ec) return watch_close();
                              connected_ = false;
                              boost::system::error_code ignored;
                              socket_.close(ignored);  // a write in progress fails and is retried
                              if (!busy_ && !retry_pending_ && !buffer_.empty()) send_next();
                            });
  }

  void write_socket() {
    const size_t size = out_.size();
    asio::async_write(socket_, asio::buffer(out_),
                      [this, size](const boost::system::error_code& ec, size_t) {
                        if (stopped_) return;
                        if (ec) return failed(fmt::format("write: {}", ec.message()));
                        done_ok(size);
                      });
  }

  void send_datagrams() {
    boost::system::error_code ec;
    if (!udp_.is_open()) {
      asio::ip::udp::resolver r(pipeline_.io());
      auto results = r.resolve(config_.host, std::to_string(config_.port), ec);
      if (ec || results.empty())
        return failed(
            fmt::format("resolve {}: {}", config_.host, ec ? ec.message() : "no address"));
      udp_endpoint_ = *results.begin();
      udp_.open(udp_endpoint_.protocol(), ec);
      if (ec) return failed(fmt::format("udp socket: {}", ec.message()));
    }
    uint64_t bytes = 0;
    for (const std::string& d : datagrams_) {
      const std::string_view payload(d.data(), std::min<size_t>(d.size(), 65507));
      udp_.send_to(asio::buffer(payload.data(), payload.size()), udp_endpoint_, 0, ec);
      if (ec) {
        udp_.close();
        return failed(fmt::format("udp send: {}", ec.message()));
      }
      bytes += payload.size();
    }
    connected_ = true;
    done_ok(bytes);
  }

  bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::write(fd, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  void write_fd(int fd) {
    if (!write_all(fd, out_)) return failed(fmt::format("write: {}", std::strerror(errno)));
    done_ok(out_.size());
  }

  void write_file() {
    if (file_fd_ < 0) {
      file_fd_ = ::open(config_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
      if (file_fd_ < 0) {
        return failed(fmt::format("open {}: {}", config_.path, std::strerror(errno)));
      }
      struct stat st {};
      ::fstat(file_fd_, &st);
      file_size_ = static_cast<uint64_t>(st.st_size);
    }
    if (!write_all(file_fd_, out_)) {
      ::close(file_fd_);
      file_fd_ = -1;
      return failed(fmt::format("write {}: {}", config_.path, std::strerror(errno)));
    }
    if (pipeline_.config().fsync) ::fdatasync(file_fd_);
    file_size_ += out_.size();
    if (file_size_ >= config_.file_max_size) rotate_file();
    done_ok(out_.size());
  }

  // path -> path.1 -> ... -> path.<max_files> (the oldest is removed).
  void rotate_file() {
    ::close(file_fd_);
    file_fd_ = -1;
    if (config_.file_max_files == 0) {
      ::unlink(config_.path.c_str());
      return;
    }
    for (uint32_t i = config_.file_max_files; i >= 1; --i) {
      const std::string from = i == 1 ? config_.path : fmt::format("{}.{}", config_.path, i - 1);
      ::rename(from.c_str(), fmt::format("{}.{}", config_.path, i).c_str());
    }
  }

  tcp::socket socket_;
  asio::ip::udp::socket udp_;
  asio::ip::udp::endpoint udp_endpoint_;
  tcp::resolver resolver_;
  asio::steady_timer connect_timer_;
  std::string out_;
  std::vector<std::string> datagrams_;
  std::string message_, frame_, scratch_;
  char sink_[512];
  size_t batches_ = 0;
  uint64_t records_ = 0;
  bool retry_pending_ = false;
  int file_fd_ = -1;
  uint64_t file_size_ = 0;
};

}  // namespace

std::unique_ptr<Output> make_output(const OutputConfig& config, Pipeline& pipeline,
                                    OutputBuffer& buffer) {
  switch (config.kind) {
    case OutputConfig::Kind::kHttp:
    case OutputConfig::Kind::kLoki:
    case OutputConfig::Kind::kElasticsearch:
      return make_http_output(config, pipeline, buffer);
    default:
      return std::make_unique<StreamOutput>(config, pipeline, buffer);
  }
}

}  // namespace sidecar::logship
