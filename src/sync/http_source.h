// A file or archive at an HTTP(S) URL as a sync source, through libcurl.
//
// Conditional requests (If-None-Match with the last ETag, else
// If-Modified-Since with the last Last-Modified) make an unchanged source
// cost one 304. A download is identified by the SHA-256 of its bytes, so a
// server without validators still produces no new revision for the same
// content. Archives (.tar, .tar.gz, .tgz, .tar.xz, .tar.bz2, .zip, by the
// URL's name) are unpacked with libarchive, refusing absolute paths, ".."
// and links that lead outside; any other file is stored under its name.
//
// Thread safety: one HttpSource per sync thread.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace sidecar::sync {

class HttpSource {
 public:
  // `work` is a directory for the download in progress; `proxy` (a URL, or
  // "" for the environment's http_proxy/https_proxy/no_proxy) is used for
  // the downloads; `stop` set aborts a transfer in progress.
  HttpSource(std::string work, std::string proxy, const std::atomic<bool>* stop);

  // Downloads `url` unless unchanged since the last call. Returns the
  // content's id (hex SHA-256), or nothing for 304 Not Modified. Throws
  // SyncError (HTTP errors, timeouts, `deadline`).
  std::optional<std::string> fetch(const std::string& url,
                                   std::chrono::steady_clock::time_point deadline);
  // Writes the last download into the directory `dir`, which it creates:
  // unpacked when the URL names an archive, else as `file` (default: the
  // URL's last path segment). Throws SyncError.
  void extract(const std::string& url, const std::string& file, const std::string& dir);
  // Forgets the validators: the next fetch downloads (to repair a live tree).
  void forget() {
    etag_.clear();
    last_modified_.clear();
  }

 private:
  std::string work_;
  std::string proxy_;
  const std::atomic<bool>* stop_;
  std::string download_;  // the last download's path
  std::string etag_;
  std::string last_modified_;
};

struct HttpResponse {
  int status = 0;
  std::string body;  // up to the max_body asked for
};

// Sends one HTTP request (webhooks, askpass_url): `method` to `url` with
// `headers` ("Name: value"), within `timeout`, proxies from the
// environment; `stop` set aborts it. Returns the status and up to
// `max_body` bytes of the body, or throws SyncError when there is no
// response.
HttpResponse http_call(const std::string& method, const std::string& url,
                       const std::vector<std::string>& headers, std::chrono::milliseconds timeout,
                       const std::atomic<bool>* stop, size_t max_body = 0);

}  // namespace sidecar::sync
