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

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace sidecar::sync {

class HttpSource {
 public:
  // `work` is a directory for the download in progress.
  explicit HttpSource(std::string work);

  // Downloads `url` unless unchanged since the last call. Returns the
  // content's id (hex SHA-256), or nothing for 304 Not Modified. Throws
  // SyncError (HTTP errors, timeouts, `deadline`).
  std::optional<std::string> fetch(const std::string& url,
                                   std::chrono::steady_clock::time_point deadline);
  // Writes the last download into the empty directory `dir`: unpacked when
  // the URL names an archive, else as `file` (default: the URL's last path
  // segment). Throws SyncError.
  void extract(const std::string& url, const std::string& file, const std::string& dir);

 private:
  std::string work_;
  std::string download_;  // the last download's path
  std::string etag_;
  std::string last_modified_;
};

// Sends one HTTP request (for webhooks): `method` to `url` with `headers`
// ("Name: value"), within `timeout`. Returns the status, or throws
// SyncError when there is no response.
int http_request(const std::string& method, const std::string& url,
                 const std::vector<std::string>& headers, std::chrono::milliseconds timeout);

}  // namespace sidecar::sync
