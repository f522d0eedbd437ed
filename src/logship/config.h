// The `logs:` section: log shipping from the app's files and stdout to
// collectors (docs/config.md "logs", docs/logship.md). Parsed in the binary
// (this file needs only yaml-cpp and RE2); the work is done by
// libsidecar-logs.so, loaded when a config has the section.
//
// Names follow Fluent Bit and Vector where they have one (read_from,
// rotate_wait, multiline, match, buffer, max_retries).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/reader.h"

namespace re2 {
class RE2;
}

namespace sidecar::logship {

using config::Duration;
using namespace std::chrono_literals;
using Regex = std::shared_ptr<const re2::RE2>;

// How a line becomes fields. `kind` is one of the built-in parsers.
struct ParserConfig {
  enum class Kind { kJson, kLogfmt, kRegex, kCri, kDocker, kSyslog, kNginx, kApache };
  std::string name;  // the built-in name, or the name under `parsers:`
  Kind kind = Kind::kJson;
  Regex regex;                // kRegex: RE2 with named groups, which become the fields
  std::string time_key;       // the field holding the record's time; empty: the read time
  std::string time_format;    // strptime(3) format, or rfc3339 (default), unix, unix_ms
  bool keep_time_key = true;  // keep the time field in the record
};

// Joins lines that belong together into one record.
struct MultilineConfig {
  enum class Mode { kNone, kStart, kJava, kPython, kGo };
  Mode mode = Mode::kNone;
  Regex start;            // kStart: a line matching this begins a record
  Duration timeout = 1s;  // a pending record is flushed after this without a new line
  uint32_t max_lines = 1000;
  uint64_t max_bytes = 1 << 20;
};

// One step of an input's filter chain, run in order on each record.
struct FilterConfig {
  enum class Kind { kAdd, kRename, kRemove, kGrep, kSample, kRateLimit, kRedact };
  Kind kind = Kind::kAdd;
  std::vector<std::pair<std::string, std::string>> pairs;  // kAdd: key, value; kRename: from, to
  std::vector<std::string> keys;                           // kRemove
  // kGrep: records whose `field` matches `regex` are kept (include) or
  // dropped (exclude). kRedact: matches in `fields` (all string fields when
  // empty) are replaced with `replacement`.
  std::string field;
  Regex regex;
  bool exclude = false;
  std::vector<std::string> fields;
  std::string replacement = "[REDACTED]";
  double rate = 1.0;     // kSample: the fraction kept
  uint32_t records = 0;  // kRateLimit: records per `per`, per source
  Duration per = 1s;
};

struct FileInputConfig {
  std::vector<std::string> paths;    // glob(7) patterns
  std::vector<std::string> exclude;  // fnmatch(3) patterns on the path and on the file name
  bool read_from_head = true;        // read_from: head | tail, for files seen the first time
  Duration rotate_wait = 5s;         // a rotated or deleted file is read this long after its end
  Duration poll_interval = 1s;       // glob rescan and stat of open files (besides inotify)
  uint32_t fingerprint_size = 256;   // bytes at the start of a file that identify it
  uint64_t max_line_size = 1 << 20;  // longer lines are split or truncated (counted)
  bool truncate_long_lines = false;  // long_lines: split (default) | truncate
  uint32_t max_open_files = 1024;
  std::string path_key;  // when set, the file's path is added as this field
};

struct StdoutInputConfig {
  bool stdout_stream = true;
  bool stderr_stream = true;
  uint64_t buffer_size = 1 << 20;  // bytes queued from the app; beyond, dropped (counted)
  uint64_t max_line_size = 1 << 20;
  std::string stream_key;  // when set, "stdout" or "stderr" is added as this field
};

struct InputConfig {
  std::string name;
  std::string tag;  // for `match`; default: the name
  enum class Kind { kFile, kAppStdout } kind = Kind::kFile;
  FileInputConfig file;
  StdoutInputConfig app_stdout;
  std::vector<ParserConfig> parsers;  // tried in order; none: the line is the `message`
  MultilineConfig multiline;
  bool cri_partials = false;  // join CRI P/F partial lines (parser cri, or multiline: cri)
  std::vector<FilterConfig> filters;
};

struct BufferConfig {
  bool disk = false;                 // type: memory | disk
  uint64_t memory_size = 4 << 20;    // bytes of records held in memory per output
  uint64_t max_size = 256ull << 20;  // type disk: bytes of chunks on disk
  bool drop_oldest = false;          // when_full: block (default) | drop_oldest
};

struct RetryConfig {
  Duration initial_backoff = 1s;
  Duration max_backoff = 60s;
  uint32_t max_retries = 0;  // 0: forever
};

struct OutputConfig {
  std::string name;
  std::vector<std::string> match;  // input names or tags; "*" for all
  std::string where_field;         // with where_regex: only records whose field matches
  Regex where_regex;
  enum class Kind { kTcp, kUdp, kSyslog, kHttp, kLoki, kElasticsearch, kFile, kStdout };
  Kind kind = Kind::kTcp;
  enum class Format { kJsonLines, kRaw, kJsonArray };
  Format format =
      Format::kJsonLines;  // tcp, udp, file, stdout: json_lines | raw; http: +json_array
  std::string host;        // tcp, udp, syslog: a host name or IP
  uint16_t port = 0;
  bool syslog_udp = false;       // syslog transport: tcp (octet counting) | udp
  uint32_t syslog_facility = 1;  // user
  std::string syslog_app_name = "sidecar";
  std::string syslog_hostname;  // default: the host name
  std::string severity_key;     // a field whose value (error, warn, info...) sets the severity
  std::string message_key = "message";  // syslog/loki/raw: the field sent as the message text
  std::string url;                      // http, loki, elasticsearch: http://host:port/path
  std::vector<std::pair<std::string, std::string>> headers;
  std::string auth_header;  // "Basic ..." or "Bearer ..." (built from `auth`)
  bool gzip = false;
  std::map<std::string, std::string> labels;  // loki: static labels
  std::vector<std::string> label_keys;        // loki: fields that become labels
  std::string index = "logs";                 // elasticsearch
  std::string path;                           // file
  uint64_t file_max_size = 100 << 20;         // file: rotate at this size
  uint32_t file_max_files = 5;                // file: rotated files kept
  std::string time_key;                       // when set, the record's time is added (RFC 3339)
  std::string tag_key;                        // when set, the input's tag is added
  uint64_t batch_max_bytes = 1 << 20;         // http-like: a request's body before gzip
  Duration batch_timeout = 1s;                // http-like: a partial batch waits this long
  Duration timeout = 10s;                     // connect, and one request
  BufferConfig buffer;
  RetryConfig retry;
};

// The typed section (what `parse` returns).
struct Section {
  std::string state_dir = "/var/lib/sidecar/logs";
  Duration checkpoint_interval = 250ms;  // bounds what a crash sends twice
  bool fsync = true;                     // fsync checkpoints and disk chunks before they count
  std::vector<InputConfig> inputs;
  std::vector<OutputConfig> outputs;
};

// The section's parser (config::Parser).
std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

// Registers the module kind "logs" (module/module.h).
void register_module();

}  // namespace sidecar::logship
