#include "acme/storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "core/json.h"

namespace sidecar::acme {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::runtime_error(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) fail("cannot create", path);
}

std::optional<std::string> read_text(const std::string& path, size_t limit = 1 << 20) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string s;
  char buf[8192];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    s.append(buf, static_cast<size_t>(in.gcount()));
    if (s.size() > limit) return std::nullopt;
  }
  return s;
}

std::optional<boost::json::object> read_json(const std::string& path) {
  auto text = read_text(path);
  if (!text) return std::nullopt;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(*text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return v.get_object();
}

std::string member(const boost::json::object& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return {};
  return std::string(it->value().get_string().c_str());
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& content, unsigned mode) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) fail("cannot create", tmp);
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      errno = saved;
      fail("cannot write", tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail("cannot write", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    fail("cannot rename to", path);
  }
  fsync_dir(fs::path(path).parent_path().string());
}

void Storage::prepare() const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot create {}: {}", dir_, ec.message()));
  ::chmod(dir_.c_str(), 0700);
  make_dir(dir_ + "/certificates");
}

PrivateKey Storage::account_key(bool& created) const {
  const std::string path = dir_ + "/account.key";
  created = false;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    auto pem = read_text(path);
    if (!pem) throw std::runtime_error("cannot read " + path);
    PrivateKey key = PrivateKey::from_pem(*pem);
    if (!key.is_p256()) {
      throw std::runtime_error(path +
                               " is not an ECDSA P-256 key (ES256 is what sidecar signs with)");
    }
    return key;
  }
  if (errno != ENOENT) fail("cannot read", path);
  PrivateKey key = PrivateKey::generate("p256");
  write_file_atomic(path, key.to_pem());
  created = true;
  return key;
}

std::optional<StoredAccount> Storage::account() const {
  auto o = read_json(dir_ + "/account.json");
  if (!o) return std::nullopt;
  StoredAccount a{member(*o, "directory"), member(*o, "url"), member(*o, "contact")};
  if (a.directory.empty() || a.url.empty()) return std::nullopt;
  return a;
}

void Storage::save_account(const StoredAccount& a) const {
  std::string j = "{\"directory\":";
  core::append_json_string(j, a.directory);
  j += ",\"url\":";
  core::append_json_string(j, a.url);
  j += ",\"contact\":";
  core::append_json_string(j, a.contact);
  j += "}\n";
  write_file_atomic(dir_ + "/account.json", j);
}

void Storage::forget_account() const { ::unlink((dir_ + "/account.json").c_str()); }

std::optional<StoredCertificate> Storage::certificate() const {
  std::error_code ec;
  const fs::path target = fs::read_symlink(dir_ + "/current", ec);
  if (ec) return std::nullopt;
  StoredCertificate c;
  c.path = (fs::path(dir_) / target).lexically_normal().string();
  auto cert = read_text(c.path + "/cert.pem");
  auto key = read_text(c.path + "/key.pem");
  auto meta = read_json(c.path + "/meta.json");
  if (!cert || !key || !meta) return std::nullopt;
  c.cert_pem = std::move(*cert);
  c.key_pem = std::move(*key);
  c.directory = member(*meta, "directory");
  if (auto it = meta->find("domains"); it != meta->end() && it->value().is_array()) {
    for (const auto& d : it->value().get_array()) {
      if (d.is_string()) c.domains.emplace_back(d.get_string().c_str());
    }
  }
  if (auto it = meta->find("issued_at"); it != meta->end() && it->value().is_int64()) {
    c.issued_at = it->value().get_int64();
  }
  return c;
}

std::string Storage::save_certificate(const StoredCertificate& c, const std::string& serial) const {
  const std::string base = dir_ + "/certificates";
  make_dir(base);
  const std::string tmp = base + "/.tmp-" + serial;
  const std::string final_dir = base + "/" + serial;
  std::error_code ec;
  fs::remove_all(tmp, ec);
  make_dir(tmp);
  write_file_atomic(tmp + "/key.pem", c.key_pem);
  write_file_atomic(tmp + "/cert.pem", c.cert_pem);
  std::string meta = "{\"directory\":";
  core::append_json_string(meta, c.directory);
  meta += ",\"domains\":[";
  for (size_t i = 0; i < c.domains.size(); ++i) {
    if (i > 0) meta += ',';
    core::append_json_string(meta, c.domains[i]);
  }
  meta += fmt::format("],\"issued_at\":{}}}\n", c.issued_at);
  write_file_atomic(tmp + "/meta.json", meta);
  fs::remove_all(final_dir, ec);
  if (::rename(tmp.c_str(), final_dir.c_str()) != 0) fail("cannot rename to", final_dir);
  fsync_dir(base);

  // The previous certificate stays (a reader may still be opening it).
  std::string previous;
  if (auto p = fs::read_symlink(dir_ + "/current", ec); !ec) {
    previous = p.filename().string();
  }
  const std::string link_tmp = dir_ + "/current.tmp";
  ::unlink(link_tmp.c_str());
  if (::symlink(("certificates/" + serial).c_str(), link_tmp.c_str()) != 0) {
    fail("cannot create", link_tmp);
  }
  if (::rename(link_tmp.c_str(), (dir_ + "/current").c_str()) != 0) {
    fail("cannot rename to", dir_ + "/current");
  }
  fsync_dir(dir_);
  for (const auto& entry : fs::directory_iterator(base, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == serial || name == previous) continue;
    fs::remove_all(entry.path(), ec);
  }
  return final_dir;
}

}  // namespace sidecar::acme
