#include "sync/http_source.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "sync/git_source.h"

namespace sidecar::sync {
namespace {

namespace fs = std::filesystem;

void init_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Download {
  FILE* file = nullptr;
  EVP_MD_CTX* sha = nullptr;
  std::string etag, last_modified;
  std::chrono::steady_clock::time_point deadline;
  const std::atomic<bool>* stop = nullptr;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* d = static_cast<Download*>(user);
  const size_t bytes = size * n;
  EVP_DigestUpdate(d->sha, data, bytes);
  return fwrite(data, 1, bytes, d->file);
}

std::string header_value(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || line[name.size()] != ':') return {};
  for (size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return {};
  }
  std::string_view v = line.substr(name.size() + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' '))
    v.remove_suffix(1);
  return std::string(v);
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* d = static_cast<Download*>(user);
  const std::string_view line(data, size * n);
  if (auto v = header_value(line, "etag"); !v.empty()) d->etag = v;
  if (auto v = header_value(line, "last-modified"); !v.empty()) d->last_modified = v;
  return size * n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* d = static_cast<Download*>(user);
  if (d->stop != nullptr && d->stop->load(std::memory_order_relaxed)) return 1;
  return std::chrono::steady_clock::now() >= d->deadline ? 1 : 0;
}

int on_stop(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* stop = static_cast<const std::atomic<bool>*>(user);
  return stop != nullptr && stop->load(std::memory_order_relaxed) ? 1 : 0;
}

struct Body {
  std::string* out;
  size_t max;
};

size_t on_response_body(char* data, size_t size, size_t n, void* user) {
  auto* b = static_cast<Body*>(user);
  const size_t bytes = size * n;
  if (b->out->size() < b->max) b->out->append(data, std::min(bytes, b->max - b->out->size()));
  return bytes;
}

long remaining_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
  return left < 1 ? 1 : static_cast<long>(left);
}

bool is_archive(std::string_view name) {
  for (std::string_view ext :
       {".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar.zst", ".zip"}) {
    if (name.ends_with(ext)) return true;
  }
  return false;
}

std::string url_name(const std::string& url) {
  std::string path = url.substr(0, url.find_first_of("?#"));
  const size_t slash = path.rfind('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  return name.empty() || name.find("://") != std::string::npos ? "index.html" : name;
}

// A relative path that does not climb out ("a/../../b" does).
bool stays_inside(const std::string& path) {
  if (path.empty() || path[0] == '/') return false;
  int depth = 0;
  for (const auto& part : fs::path(path)) {
    if (part == "..") {
      if (--depth < 0) return false;
    } else if (part != "." && !part.empty()) {
      ++depth;
    }
  }
  return true;
}

}  // namespace

HttpSource::HttpSource(std::string work, std::string proxy, const std::atomic<bool>* stop)
    : work_(std::move(work)), proxy_(std::move(proxy)), stop_(stop) {
  init_curl();
}

std::optional<std::string> HttpSource::fetch(const std::string& url,
                                             std::chrono::steady_clock::time_point deadline) {
  fs::create_directories(work_);
  const std::string part = work_ + "/download.part";
  Download d;
  d.deadline = deadline;
  d.stop = stop_;
  d.file = std::fopen(part.c_str(), "wb");
  if (d.file == nullptr) throw SyncError(fmt::format("cannot create {}", part));
  d.sha = EVP_MD_CTX_new();
  EVP_DigestInit_ex(d.sha, EVP_sha256(), nullptr);
  CURL* curl = curl_easy_init();
  curl_slist* headers = nullptr;
  if (!etag_.empty()) {
    headers = curl_slist_append(headers, ("If-None-Match: " + etag_).c_str());
  } else if (!last_modified_.empty()) {
    headers = curl_slist_append(headers, ("If-Modified-Since: " + last_modified_).c_str());
  }
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &d);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &d);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, remaining_ms(deadline));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "sidecar-sync");
  if (!proxy_.empty()) curl_easy_setopt(curl, CURLOPT_PROXY, proxy_.c_str());
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  std::fclose(d.file);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  EVP_DigestFinal_ex(d.sha, digest, &digest_len);
  EVP_MD_CTX_free(d.sha);
  if (rc == CURLE_ABORTED_BY_CALLBACK) {
    throw SyncError(fmt::format("GET {}: {}", url,
                                stop_ != nullptr && stop_->load() ? "stopped" : "timed out"));
  }
  if (rc != CURLE_OK) {
    throw SyncError(fmt::format("GET {}: {}", url, error[0] != 0 ? error : curl_easy_strerror(rc)));
  }
  if (status == 304) return std::nullopt;
  if (status < 200 || status >= 300) throw SyncError(fmt::format("GET {}: HTTP {}", url, status));
  etag_ = d.etag;
  last_modified_ = d.last_modified;
  download_ = work_ + "/download";
  std::rename(part.c_str(), download_.c_str());
  std::string id;
  for (unsigned int i = 0; i < digest_len; ++i) id += fmt::format("{:02x}", digest[i]);
  return id;
}

void HttpSource::extract(const std::string& url, const std::string& file, const std::string& dir) {
  const std::string name = url_name(url);
  {
    std::error_code ec;
    fs::create_directory(dir, ec);
    if (ec) throw SyncError(fmt::format("cannot create {}: {}", dir, ec.message()));
  }
  if (!is_archive(name)) {
    const std::string target = dir + "/" + (file.empty() ? name : file);
    std::error_code ec;
    fs::copy_file(download_, target, ec);
    if (ec) throw SyncError(fmt::format("cannot write {}: {}", target, ec.message()));
    return;
  }
  archive* in = archive_read_new();
  archive_read_support_filter_all(in);
  archive_read_support_format_all(in);
  archive* out = archive_write_disk_new();
  // Entries are checked here (relative, no "..", links that stay inside),
  // then written under `dir`; libarchive refuses to write through symlinks.
  archive_write_disk_set_options(out, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                          ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                          ARCHIVE_EXTRACT_SECURE_SYMLINKS);
  std::string failure;
  if (archive_read_open_filename(in, download_.c_str(), 64 * 1024) != ARCHIVE_OK) {
    failure = archive_error_string(in);
  }
  archive_entry* entry = nullptr;
  while (failure.empty()) {
    const int r = archive_read_next_header(in, &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) {
      failure = archive_error_string(in);
      break;
    }
    const std::string name = archive_entry_pathname(entry);
    if (!stays_inside(name)) {
      failure = fmt::format("{}: a path outside the folder", name);
      break;
    }
    if (const char* target = archive_entry_symlink(entry)) {
      const fs::path parent = fs::path(name).parent_path();
      if (target[0] == '/' || !stays_inside((parent / target).lexically_normal().string())) {
        failure = fmt::format("{}: a link to outside the folder ({})", name, target);
        break;
      }
    }
    const std::string path = dir + "/" + name;
    archive_entry_set_pathname(entry, path.c_str());
    if (const char* hard = archive_entry_hardlink(entry)) {
      if (!stays_inside(hard)) {
        failure = fmt::format("{}: a hard link to outside the folder", name);
        break;
      }
      archive_entry_set_hardlink(entry, (dir + "/" + hard).c_str());
    }
    if (archive_write_header(out, entry) != ARCHIVE_OK) {
      failure = archive_error_string(out);
      break;
    }
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int b;
    while ((b = archive_read_data_block(in, &buf, &size, &offset)) == ARCHIVE_OK) {
      if (archive_write_data_block(out, buf, size, offset) != ARCHIVE_OK) {
        failure = archive_error_string(out);
        break;
      }
    }
    if (failure.empty() && b != ARCHIVE_EOF) failure = archive_error_string(in);
    if (failure.empty() && archive_write_finish_entry(out) != ARCHIVE_OK) {
      failure = archive_error_string(out);
    }
  }
  archive_read_free(in);
  archive_write_free(out);
  if (!failure.empty()) throw SyncError(fmt::format("unpacking {}: {}", name, failure));
}

HttpResponse http_call(const std::string& method, const std::string& url,
                       const std::vector<std::string>& headers, std::chrono::milliseconds timeout,
                       const std::atomic<bool>* stop, size_t max_body) {
  init_curl();
  CURL* curl = curl_easy_init();
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  char error[CURL_ERROR_SIZE] = {};
  HttpResponse response;
  Body body{&response.body, max_body};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "sidecar-sync");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_response_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_stop);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(stop));
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  if (method == "POST" || method == "PUT") curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    throw SyncError(fmt::format("{} {}: {}", method, url,
                                rc == CURLE_ABORTED_BY_CALLBACK ? "stopped"
                                : error[0] != 0                 ? error
                                                                : curl_easy_strerror(rc)));
  }
  response.status = static_cast<int>(status);
  return response;
}

}  // namespace sidecar::sync
