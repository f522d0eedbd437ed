// Outputs: take batches from their buffer, encode them in the receiver's
// format, send, and acknowledge what the receiver acknowledged (what that
// means per output is in docs/logship.md "Acknowledgements"):
//
//   tcp, syslog over TCP   the bytes were written to the socket (the kernel
//                          took them; there is no application-level ack)
//   udp, syslog over UDP   the datagram was sent
//   file, stdout           write(2) returned (fsync for file when `fsync`)
//   http, loki             a 2xx response
//   elasticsearch          a 2xx response, and per item of the _bulk
//                          answer: only failed items are retried
//
// Failures are retried with exponential backoff and jitter, forever unless
// `max_retries`; a 400 (or a bulk item rejected as invalid) goes to the
// dead-letter file instead of being retried.
//
// Thread safety: the shipper thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "logship/buffer.h"
#include "logship/config.h"
#include "logship/pipeline.h"
#include "logship/record.h"

namespace sidecar::logship {

class Output {
 public:
  Output(const OutputConfig& config, Pipeline& pipeline, OutputBuffer& buffer);
  virtual ~Output();

  const OutputConfig& config() const { return config_; }
  OutputBuffer& buffer() { return buffer_; }
  OutputCounters& counters() { return counters_; }
  const std::string& last_error() const { return last_error_; }
  bool connected() const { return connected_; }

  // The buffer has new batches.
  virtual void wake() = 0;
  // Stop sending (the deadline passed); nothing is acknowledged after this.
  virtual void shutdown();
  // Nothing queued and nothing in flight.
  virtual bool idle() const { return !busy_ && buffer_.empty(); }
  // Whether a record goes to this output (`where`).
  bool wants(const Batch& b, const Record& r, std::string& scratch) const;

  // Encodings shared by outputs.
  // The record as JSON with the output's time_key / tag_key.
  void encode_json(const Batch& b, const Record& r, std::string& out) const;
  // The record's message text (message_key), or its JSON when it has none.
  void encode_raw(const Batch& b, const Record& r, std::string& out, std::string& scratch) const;

 protected:
  // Schedules `fn` after the next backoff delay; counts a retry.
  void retry_later(std::function<void()> fn);
  void reset_backoff() { attempt_ = 0; }
  // max_retries reached: drops the first `batches` in flight (counted).
  bool give_up(size_t batches);
  // Appends a rejected record to <state_dir>/dead_letter/<name>.ndjson.
  void dead_letter(const Batch& b, const Record& r, int status, std::string_view reason);
  void fail(std::string error);
  void succeeded(size_t batches, uint64_t records, uint64_t bytes);

  const OutputConfig& config_;
  Pipeline& pipeline_;
  OutputBuffer& buffer_;
  OutputCounters counters_;
  boost::asio::steady_timer retry_timer_;
  std::string last_error_;
  uint32_t attempt_ = 0;
  bool busy_ = false;
  bool connected_ = false;
  bool stopped_ = false;
  uint64_t random_;
  std::string hostname_;
  int dead_letter_fd_ = -1;
};

std::unique_ptr<Output> make_output(const OutputConfig& config, Pipeline& pipeline,
                                    OutputBuffer& buffer);
// In output_http.cc.
std::unique_ptr<Output> make_http_output(const OutputConfig& config, Pipeline& pipeline,
                                         OutputBuffer& buffer);

// RFC 5424 6: one message, without framing.
void encode_syslog(const OutputConfig& config, const std::string& hostname, const Batch& b,
                   const Record& r, const std::string& message, std::string& out);

}  // namespace sidecar::logship
