// The HTTP outputs: http (NDJSON or a JSON array), loki (push API, JSON),
// elasticsearch (_bulk NDJSON, per-item results). One request at a time
// per output over a keep-alive HTTP/1.1 connection, with the response read
// by the sidecar's own HTTP/1.1 codec (src/http). Batching: a request is
// sent when batch.max_bytes of body is ready or the oldest queued batch
// waited batch.timeout (at once while draining).
#include <zlib.h>

#include <map>

#include <fmt/format.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "http/http1_parser.h"
#include "logship/output.h"

namespace sidecar::logship {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

bool gzip(std::string_view in, std::string& out) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return false;
  }
  out.resize(deflateBound(&z, static_cast<uLong>(in.size())) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END;
}

// Where a record of the request came from (for per-item results).
struct Item {
  size_t batch;
  size_t record;
};

class HttpOutput final : public Output {
 public:
  HttpOutput(const OutputConfig& config, Pipeline& pipeline, OutputBuffer& buffer)
      : Output(config, pipeline, buffer),
        socket_(pipeline.io()),
        resolver_(pipeline.io()),
        timer_(pipeline.io()),
        batch_timer_(pipeline.io()) {}

  void wake() override {
    if (busy_ || retry_pending_ || stopped_) return;
    if (buffer_.empty() && !retry_) return;
    if (!waiting_) {
      waiting_ = true;
      waiting_since_ = std::chrono::steady_clock::now();
    }
    if (retry_ || ready_to_send()) {
      send_next();
      return;
    }
    if (!batch_timer_armed_) {
      batch_timer_armed_ = true;
      batch_timer_.expires_at(waiting_since_ + config_.batch_timeout);
      batch_timer_.async_wait([this](const boost::system::error_code& ec) {
        batch_timer_armed_ = false;
        if (!ec && !stopped_ && !busy_ && !retry_pending_ && !buffer_.empty()) send_next();
      });
    }
  }

  bool idle() const override { return Output::idle() && !retry_; }

  void shutdown() override {
    Output::shutdown();
    boost::system::error_code ec;
    socket_.close(ec);
    timer_.cancel();
    batch_timer_.cancel();
    resolver_.cancel();
  }

 private:
  bool ready_to_send() {
    if (pipeline_.draining()) return true;
    if (std::chrono::steady_clock::now() - waiting_since_ >= config_.batch_timeout) return true;
    uint64_t bytes = 0;
    for (size_t i = 0;; ++i) {
      std::shared_ptr<Batch> b = buffer_.peek(i);
      if (!b) return false;
      bytes += b->arena.size();
      if (bytes >= config_.batch_max_bytes) return true;
    }
  }

  // --- encoding --------------------------------------------------------

  void add_ndjson(const Batch& b, const Record& r) {
    if (config_.kind == OutputConfig::Kind::kElasticsearch) {
      body_ += "{\"create\":{\"_index\":\"";
      append_escaped(body_, config_.index);
      body_ += "\"}}\n";
    }
    if (config_.format == OutputConfig::Format::kJsonArray) {
      body_ += items_.size() > 1 ? "," : "";
      encode_json(b, r, body_);
    } else {
      encode_json(b, r, body_);
      body_ += '\n';
    }
  }

  // Loki's push API (JSON): {"streams":[{"stream":{labels},"values":[[ns, line], ...]}]}
  void add_loki(const Batch& b, const Record& r) {
    std::string labels = "{";
    std::map<std::string, std::string> set(config_.labels.begin(), config_.labels.end());
    for (const std::string& key : config_.label_keys) {
      if (const Field* f = b.find(r, key)) {
        std::string v(b.text(*f, scratch_));
        set[key] = v;
      }
    }
    bool first = true;
    for (const auto& [k, v] : set) {
      if (!first) labels += ',';
      first = false;
      labels += '"';
      append_escaped(labels, k);
      labels += "\":\"";
      append_escaped(labels, v);
      labels += '"';
    }
    labels += '}';
    std::string& values = streams_[labels];
    const size_t before = values.size();
    struct Count {
      size_t& total;
      const std::string& v;
      size_t before;
      ~Count() { total += v.size() - before; }
    } count{loki_bytes_, values, before};
    if (!values.empty()) values += ',';
    values += fmt::format("[\"{}\",\"", r.time_ns);
    // The line: the message when that is all the record has, else the record as JSON.
    line_.clear();
    const Field* message = b.find(r, config_.message_key);
    if (message != nullptr && r.field_count == 1 &&
        (message->kind == ValueKind::kString || message->kind == ValueKind::kEscaped)) {
      if (message->kind == ValueKind::kEscaped) {
        values.append(b.value(*message));
        values += "\"]";
        return;
      }
      line_.append(b.value(*message));
    } else {
      encode_json(b, r, line_);
    }
    append_escaped(values, line_);
    values += "\"]";
  }

  // Encodes records from where the last request ended, up to
  // batch.max_bytes of body (a batch may be split over requests).
  void encode() {
    body_.clear();
    items_.clear();
    streams_.clear();
    loki_bytes_ = 0;
    full_batches_ = 0;
    next_offset_ = 0;
    const bool array = config_.format == OutputConfig::Format::kJsonArray &&
                       config_.kind == OutputConfig::Kind::kHttp;
    if (array) body_ += '[';
    sending_retry_ = retry_ != nullptr;
    size_t start = sending_retry_ ? 0 : front_offset_;
    for (size_t bi = 0;; ++bi) {
      std::shared_ptr<Batch> b = sending_retry_ ? (bi == 0 ? retry_ : nullptr) : buffer_.peek(bi);
      if (!b) break;
      size_t i = start;
      start = 0;
      for (; i < b->records.size(); ++i) {
        if (body_.size() + loki_bytes_ >= config_.batch_max_bytes) break;
        const Record& r = b->records[i];
        if (!wants(*b, r, scratch_)) continue;
        items_.push_back({bi, i});
        if (config_.kind == OutputConfig::Kind::kLoki) {
          add_loki(*b, r);
        } else {
          add_ndjson(*b, r);
        }
      }
      if (i < b->records.size()) {
        next_offset_ = i;  // this batch goes on in the next request
        break;
      }
      ++full_batches_;
    }
    if (config_.kind == OutputConfig::Kind::kLoki) {
      body_ = "{\"streams\":[";
      bool first = true;
      for (const auto& [labels, values] : streams_) {
        if (!first) body_ += ',';
        first = false;
        body_ += "{\"stream\":";
        body_ += labels;
        body_ += ",\"values\":[";
        body_ += values;
        body_ += "]}";
      }
      body_ += "]}";
    } else if (array) {
      body_ += ']';
    }
    if (sending_retry_) {
      batches_ = 1;  // the retry is sent alone
      return;
    }
    batches_ = full_batches_ + (next_offset_ > 0 ? 1 : 0);
    buffer_.set_in_flight(batches_);
  }

  std::shared_ptr<Batch> batch_of(const Item& it) {
    return sending_retry_ ? retry_ : buffer_.peek(it.batch);
  }

  // What the last request covered is done (acknowledged, dead-lettered or given up).
  void consume() {
    if (sending_retry_) {
      std::shared_ptr<Batch> r = std::move(retry_);
      retry_.reset();
      sending_retry_ = false;
      r->release();
      return;
    }
    buffer_.pop(full_batches_);
    front_offset_ = next_offset_;
  }

  std::string content_type() const {
    if (config_.kind == OutputConfig::Kind::kLoki) return "application/json";
    if (config_.kind == OutputConfig::Kind::kElasticsearch) return "application/x-ndjson";
    return config_.format == OutputConfig::Format::kJsonArray ? "application/json"
                                                              : "application/x-ndjson";
  }

  void build_request() {
    const std::string* payload = &body_;
    if (config_.gzip && gzip(body_, zipped_)) payload = &zipped_;
    request_.clear();
    request_ += fmt::format("POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: {}\r\n", config_.url,
                            config_.host, config_.port, content_type());
    request_ += fmt::format("Content-Length: {}\r\nUser-Agent: sidecar\r\n", payload->size());
    if (payload == &zipped_) request_ += "Content-Encoding: gzip\r\n";
    if (!config_.auth_header.empty()) request_ += "Authorization: " + config_.auth_header + "\r\n";
    for (const auto& [k, v] : config_.headers) request_ += k + ": " + v + "\r\n";
    request_ += "\r\n";
    request_ += *payload;
  }

  // --- sending ---------------------------------------------------------

  void send_next() {
    if (stopped_ || busy_) return;
    batch_timer_.cancel();
    waiting_ = false;
    encode();
    if (batches_ == 0) return;
    if (items_.empty()) {  // nothing for this output in these batches (where)
      consume();
      pipeline_.on_output_progress();
      return send_next();
    }
    build_request();
    busy_ = true;
    bump(counters_.requests);
    timer_.expires_after(config_.timeout);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || !busy_) return;
      timed_out_ = true;
      boost::system::error_code ignored;
      socket_.close(ignored);
    });
    timed_out_ = false;
    if (socket_.is_open()) {
      write_request(true);
    } else {
      connect();
    }
  }

  void connect() {
    resolver_.async_resolve(
        config_.host, std::to_string(config_.port),
        [this](const boost::system::error_code& ec, tcp::resolver::results_type results) {
          if (stopped_) return;
          if (ec) return failed(fmt::format("resolve {}: {}", config_.host, ec.message()));
          asio::async_connect(
              socket_, results, [this](const boost::system::error_code& ec2, const tcp::endpoint&) {
                if (stopped_) return;
                if (ec2) {
                  return failed(
                      fmt::format("connect {}:{}: {}", config_.host, config_.port, ec2.message()));
                }
                connected_ = true;
                write_request(false);
              });
        });
  }

  // `reused`: on a kept-alive connection, which the server may have closed
  // meanwhile: then one new connection is tried at once.
  void write_request(bool reused) {
    asio::async_write(socket_, asio::buffer(request_),
                      [this, reused](const boost::system::error_code& ec, size_t) {
                        if (stopped_) return;
                        if (ec) return reused ? reconnect() : failed("write: " + ec.message());
                        in_.clear();
                        in_.reserve(64 * 1024);  // the head's views stay valid
                        parser_.reset();
                        head_.clear();
                        read_response(reused);
                      });
  }

  void reconnect() {
    boost::system::error_code ignored;
    socket_.close(ignored);
    connect();
  }

  void read_response(bool reused) {
    const size_t old = in_.size();
    in_.resize(old + 16384);
    socket_.async_read_some(asio::buffer(in_.data() + old, 16384),
                            [this, old, reused](const boost::system::error_code& ec, size_t n) {
                              in_.resize(old + n);
                              if (stopped_) return;
                              if (ec) {
                                if (timed_out_) return failed("timeout");
                                if (reused && old == 0) return reconnect();
                                return failed("read: " + ec.message());
                              }
                              if (!parse_response()) read_response(false);
                            });
  }

  // True when the response is complete (and handled).
  bool parse_response() {
    if (head_.status == 0 || body_start_ == 0) {
      const http::HeadResult r = parser_.feed(in_, head_);
      if (r.status == http::HeadResult::kError) {
        failed("bad response: " + std::string(http::to_string(r.error)));
        return true;
      }
      if (r.status == http::HeadResult::kNeedMore) {
        if (in_.size() <= 1 << 20) return false;
        failed("response head too large");
        return true;
      }
      body_start_ = r.consumed;
      if (head_.status < 200) {  // 1xx: skip it
        in_.erase(0, r.consumed);
        parser_.reset();
        head_.clear();
        body_start_ = 0;
        return parse_response();
      }
      chunked_.reset();
      response_body_.clear();
    }
    const std::string_view rest(in_.data() + body_start_, in_.size() - body_start_);
    const http::BodyKind kind = http::response_body_kind(head_, http::Method::kPost);
    bool complete = false;
    if (kind == http::BodyKind::kNone) {
      complete = true;
    } else if (kind == http::BodyKind::kContentLength) {
      if (rest.size() >= head_.content_length) {
        response_body_.assign(rest.substr(0, head_.content_length));
        complete = true;
      }
    } else if (kind == http::BodyKind::kChunked) {
      std::vector<std::string_view> pieces;
      const auto r = chunked_.feed(rest, &pieces);
      for (auto p : pieces) response_body_.append(p);
      body_start_ += r.consumed;
      if (r.error != http::ParseError::kNone) {
        failed("bad chunked response");
        return true;
      }
      complete = r.done;
    } else {
      return false;  // until close: read on (the read error ends it)
    }
    if (response_body_.size() > 8 << 20) {
      failed("response body too large");
      return true;
    }
    if (!complete) return false;
    const bool keep = head_.keep_alive();
    const int status = head_.status;
    head_.clear();
    body_start_ = 0;
    timer_.cancel();
    if (!keep) {
      boost::system::error_code ignored;
      socket_.close(ignored);
    }
    handle(status);
    return true;
  }

  void handle(int status) {
    busy_ = false;
    const uint64_t bytes = body_.size();
    if (status >= 200 && status < 300) {
      if (config_.kind == OutputConfig::Kind::kElasticsearch && bulk_errors()) return;
      last_error_.clear();
      succeeded(items_.size(), bytes);
      return send_next();
    }
    if (status == 429 || status == 408 || status >= 500) {
      return failed(fmt::format("HTTP {}", status));
    }
    // Rejected as invalid: retrying cannot help.
    const std::string reason = fmt::format("HTTP {}: {}", status, response_body_.substr(0, 512));
    for (const Item& it : items_) {
      auto b = batch_of(it);
      dead_letter(*b, b->records[it.record], status, reason);
    }
    fail(reason);
    succeeded(0, 0);
    send_next();
  }

  // Elasticsearch answers 200 with "errors": true and a result per item:
  // items rejected as invalid go to the dead letters, those that may
  // succeed later (429, 5xx) are queued again. True when it handled it.
  bool bulk_errors() {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(response_body_).get(doc)) return false;
    bool errors = false;
    if (doc["errors"].get_bool().get(errors) || !errors) return false;
    simdjson::dom::array items;
    if (doc["items"].get_array().get(items)) return false;
    auto retry = std::make_shared<Batch>();
    size_t index = 0;
    uint64_t ok = 0;
    for (simdjson::dom::element item : items) {
      if (index >= items_.size()) break;
      const Item where = items_[index++];
      simdjson::dom::object action;
      if (item.get_object().get(action)) continue;
      int64_t status = 0;
      std::string_view reason = "rejected";
      for (auto [key, value] : action) {
        if (value["status"].get_int64().get(status)) status = 0;
        if (value["error"]["reason"].get_string().get(reason)) reason = "rejected";
      }
      auto b = batch_of(where);
      const Record& r = b->records[where.record];
      if (status >= 200 && status < 300) {
        ++ok;
      } else if (status == 429 || status >= 500) {
        retry->begin(r.time_ns);
        for (uint32_t f = 0; f < r.field_count; ++f) {
          const Field& field = b->fields[r.first_field + f];
          const uint32_t k = retry->append(b->key(field));
          const uint32_t v = retry->append(b->value(field));
          retry->add_at(k, field.key_len, v, field.value_len, field.kind, field.key_escaped);
        }
      } else {
        dead_letter(*b, r, static_cast<int>(status), reason);
      }
    }
    if (!retry->records.empty()) {
      // The retry holds the originals until it is acknowledged itself.
      retry->tag = batch_of(items_[0])->tag;
      retry->pending = 1;
      for (size_t i = 0; i < batches_; ++i) {
        auto b = sending_retry_ ? retry_ : buffer_.peek(i);
        ++b->pending;
        retry->parents.push_back(b);
      }
      fail(fmt::format("bulk: {} items to retry", retry->records.size()));
    }
    succeeded(ok, body_.size());
    if (!retry->records.empty()) {
      retry_ = std::move(retry);
      retry_pending_ = true;
      retry_later([this] {
        retry_pending_ = false;
        send_next();
      });
      return true;
    }
    send_next();
    return true;
  }

  void failed(std::string error) {
    busy_ = false;
    timer_.cancel();
    fail(std::move(error));
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (gave_up()) {
      pipeline_.on_output_progress();
      return send_next();
    }
    retry_pending_ = true;
    retry_later([this] {
      retry_pending_ = false;
      send_next();
    });
  }

  void succeeded(uint64_t records, uint64_t bytes) {
    bump(counters_.sent, records);
    bump(counters_.bytes, bytes);
    consume();
    reset_backoff();
    pipeline_.on_output_progress();
  }

  bool gave_up() {
    if (config_.retry.max_retries == 0 || attempt_ <= config_.retry.max_retries) return false;
    spdlog::warn("logs: output {} gave up on {} records after {} retries: {}", config_.name,
                 items_.size(), config_.retry.max_retries, last_error_);
    bump(counters_.dropped_retries, items_.size());
    consume();
    attempt_ = 0;
    return true;
  }

  tcp::socket socket_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;
  asio::steady_timer batch_timer_;
  std::string body_, zipped_, request_, in_, response_body_, scratch_, line_;
  std::map<std::string, std::string> streams_;  // loki: labels -> values
  std::vector<Item> items_;
  http::ResponseParser parser_;
  http::ResponseHead head_;
  http::ChunkedDecoder chunked_;
  size_t body_start_ = 0;
  size_t loki_bytes_ = 0;         // the values encoded so far (for batch.max_bytes)
  size_t batches_ = 0;            // batches the request touches
  size_t full_batches_ = 0;       // ... of which it finishes
  size_t next_offset_ = 0;        // the record of the next batch where the next request starts
  size_t front_offset_ = 0;       // records of the oldest batch already done
  std::shared_ptr<Batch> retry_;  // elasticsearch items to send again, before the rest
  bool sending_retry_ = false;
  bool retry_pending_ = false;
  bool timed_out_ = false;
  bool waiting_ = false;
  bool batch_timer_armed_ = false;
  std::chrono::steady_clock::time_point waiting_since_;
};

}  // namespace

std::unique_ptr<Output> make_http_output(const OutputConfig& config, Pipeline& pipeline,
                                         OutputBuffer& buffer) {
  return std::make_unique<HttpOutput>(config, pipeline, buffer);
}

}  // namespace sidecar::logship
