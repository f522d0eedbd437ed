#include "sync/git_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <git2.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace sidecar::sync {
namespace {

namespace fs = std::filesystem;

void init_libgit2() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

std::string last_error(std::string_view what) {
  const git_error* e = git_error_last();
  return fmt::format("{}: {}", what,
                     e != nullptr && e->message != nullptr ? e->message : "unknown error");
}

void check(int rc, std::string_view what) {
  if (rc < 0) throw SyncError(last_error(what));
}

template <typename T, void (*Free)(T*)>
struct Owned {
  T* p = nullptr;
  ~Owned() {
    if (p != nullptr) Free(p);
  }
};

std::vector<unsigned char> base64_decode(std::string_view in) {
  std::vector<unsigned char> out(in.size() / 4 * 3 + 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return {};
  size_t len = static_cast<size_t>(n);
  // EVP_DecodeBlock counts the padding as zero bytes.
  for (size_t i = in.size(); i > 0 && in[i - 1] == '='; --i) --len;
  out.resize(len);
  return out;
}

// Whether one host pattern of a known_hosts line names `host` (port 22) or
// "[host]:port": plain names (comma separated) and hashed ones (|1|salt|hash).
bool host_matches(std::string_view patterns, const std::string& name) {
  if (patterns.starts_with("|1|")) {
    const size_t bar = patterns.find('|', 3);
    if (bar == std::string_view::npos) return false;
    const auto salt = base64_decode(patterns.substr(3, bar - 3));
    const auto want = base64_decode(patterns.substr(bar + 1));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha1(), salt.data(), static_cast<int>(salt.size()),
         reinterpret_cast<const unsigned char*>(name.data()), name.size(), mac, &mac_len);
    return want.size() == mac_len && std::memcmp(want.data(), mac, mac_len) == 0;
  }
  size_t i = 0;
  while (i <= patterns.size()) {
    size_t comma = patterns.find(',', i);
    if (comma == std::string_view::npos) comma = patterns.size();
    if (patterns.substr(i, comma - i) == name) return true;
    i = comma + 1;
  }
  return false;
}

struct Callbacks {
  const GitRequest* request = nullptr;
  int port = 22;
  int credential_calls = 0;
  std::string error;  // set by a callback that failed
};

bool expired(const Callbacks* cb) {
  return std::chrono::steady_clock::now() >= cb->request->deadline;
}

int on_credentials(git_credential** out, const char* url, const char* username_from_url,
                   unsigned int allowed, void* payload) {
  auto* cb = static_cast<Callbacks*>(payload);
  const GitRequest& r = *cb->request;
  if (++cb->credential_calls > 1) {
    cb->error = fmt::format("authentication failed for {}", url);
    return GIT_EAUTH;
  }
  const std::string user = username_from_url != nullptr ? username_from_url : "git";
  if ((allowed & GIT_CREDENTIAL_SSH_KEY) != 0 && !r.ssh_key.empty()) {
    const std::string pub = r.ssh_key + ".pub";
    const bool has_pub = ::access(pub.c_str(), R_OK) == 0;
    return git_credential_ssh_key_new(out, user.c_str(), has_pub ? pub.c_str() : nullptr,
                                      r.ssh_key.c_str(), nullptr);
  }
  if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) != 0 && !r.credentials_file.empty()) {
    std::ifstream in(r.credentials_file);
    std::string line;
    if (!std::getline(in, line)) {
      cb->error = fmt::format("cannot read credentials_file {}", r.credentials_file);
      return GIT_EAUTH;
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    const size_t colon = line.find(':');
    if (colon == std::string::npos) {  // a token alone
      return git_credential_userpass_plaintext_new(out, user.c_str(), line.c_str());
    }
    return git_credential_userpass_plaintext_new(out, line.substr(0, colon).c_str(),
                                                 line.substr(colon + 1).c_str());
  }
  cb->error = fmt::format("{} asks for credentials and none are configured", url);
  return GIT_EAUTH;
}

int on_certificate(git_cert* cert, int valid, const char* host, void* payload) {
  auto* cb = static_cast<Callbacks*>(payload);
  if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) return GIT_PASSTHROUGH;  // TLS: default checks
  const auto* key = reinterpret_cast<const git_cert_hostkey*>(cert);
  if ((key->type & GIT_CERT_SSH_RAW) == 0) {
    cb->error = "the ssh library gave no raw host key to check";
    return -1;
  }
  const std::string name =
      cb->port == 22 ? std::string(host) : fmt::format("[{}]:{}", host, cb->port);
  std::ifstream in(cb->request->known_hosts);
  if (!in) {
    cb->error = fmt::format("cannot read known_hosts {}", cb->request->known_hosts);
    return -1;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string hosts, type, blob;
    fields >> hosts;
    if (hosts == "@revoked" || hosts == "@cert-authority") continue;
    fields >> type >> blob;
    if (!host_matches(hosts, name)) continue;
    const auto decoded = base64_decode(blob);
    if (decoded.size() == key->hostkey_len &&
        std::memcmp(decoded.data(), key->hostkey, key->hostkey_len) == 0) {
      return 0;
    }
  }
  cb->error = fmt::format("the host key of {} is not in {}", name, cb->request->known_hosts);
  return -1;
}

int on_transfer(const git_indexer_progress*, void* payload) {
  auto* cb = static_cast<Callbacks*>(payload);
  if (expired(cb)) {
    cb->error = "timed out";
    return -1;
  }
  return 0;
}

int on_sideband(const char*, int, void* payload) { return on_transfer(nullptr, payload); }

int port_of(const std::string& url) {
  // ssh://[user@]host[:port]/path; scp-like user@host:path is port 22.
  if (!url.starts_with("ssh://")) return 22;
  std::string_view rest = std::string_view(url).substr(6);
  rest = rest.substr(0, rest.find('/'));
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || rest.back() == ']') return 22;
  return std::atoi(std::string(rest.substr(colon + 1)).c_str());
}

bool is_commit_id(const std::string& ref) {
  if (ref.size() != 40) return false;
  for (char c : ref) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

void write_file(const fs::path& path, const void* data, size_t size, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    throw SyncError(fmt::format("cannot create {}: {}", path.string(), std::strerror(errno)));
  const char* p = static_cast<const char*>(data);
  size_t left = size;
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw SyncError(fmt::format("cannot write {}: {}", path.string(), std::strerror(err)));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  ::close(fd);
}

struct Walk {
  git_repository* repo;
  fs::path dir;
  std::string error;
};

int on_entry(const char* root, const git_tree_entry* entry, void* payload) {
  auto* w = static_cast<Walk*>(payload);
  const std::string name = git_tree_entry_name(entry);
  // git never stores these; a crafted tree could. Nothing leaves `dir`.
  if (name.empty() || name == "." || name == ".." || name == ".git" ||
      name.find('/') != std::string::npos) {
    return 1;
  }
  const fs::path path = w->dir / root / name;
  try {
    switch (git_tree_entry_filemode(entry)) {
      case GIT_FILEMODE_TREE:
        if (::mkdir(path.c_str(), 0755) != 0) {
          throw SyncError(fmt::format("cannot create {}: {}", path.string(), std::strerror(errno)));
        }
        return 0;
      case GIT_FILEMODE_BLOB:
      case GIT_FILEMODE_BLOB_EXECUTABLE:
      case GIT_FILEMODE_LINK: {
        Owned<git_blob, git_blob_free> blob;
        check(git_blob_lookup(&blob.p, w->repo, git_tree_entry_id(entry)), "reading a file");
        const void* data = git_blob_rawcontent(blob.p);
        const size_t size = static_cast<size_t>(git_blob_rawsize(blob.p));
        if (git_tree_entry_filemode(entry) == GIT_FILEMODE_LINK) {
          const std::string target(static_cast<const char*>(data), size);
          if (::symlink(target.c_str(), path.c_str()) != 0) {
            throw SyncError(
                fmt::format("cannot create link {}: {}", path.string(), std::strerror(errno)));
          }
        } else {
          write_file(path, data, size,
                     git_tree_entry_filemode(entry) == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644);
        }
        return 0;
      }
      default:  // submodules (commit entries) are not synced
        return 1;
    }
  } catch (const SyncError& e) {
    w->error = e.what();
    return -1;
  }
}

}  // namespace

GitSource::GitSource(std::string mirror) : mirror_(std::move(mirror)) { init_libgit2(); }

GitSource::~GitSource() {
  if (repo_ != nullptr) git_repository_free(repo_);
}

void GitSource::open() {
  if (repo_ != nullptr) return;
  if (git_repository_open_bare(&repo_, mirror_.c_str()) == 0) return;
  repo_ = nullptr;
  check(git_repository_init(&repo_, mirror_.c_str(), 1), "creating the mirror repository");
}

std::string GitSource::fetch(const GitRequest& r) {
  open();
  Callbacks cb;
  cb.request = &r;
  cb.port = port_of(r.url);
  git_remote_callbacks callbacks = GIT_REMOTE_CALLBACKS_INIT;
  callbacks.credentials = on_credentials;
  callbacks.certificate_check = on_certificate;
  callbacks.transfer_progress = on_transfer;
  callbacks.sideband_progress = on_sideband;
  callbacks.payload = &cb;
  auto fail = [&cb](std::string_view what) -> SyncError {
    return SyncError(cb.error.empty() ? last_error(what) : fmt::format("{}: {}", what, cb.error));
  };

  Owned<git_remote, git_remote_free> remote;
  check(git_remote_create_anonymous(&remote.p, repo_, r.url.c_str()), "bad repository URL");

  git_oid target{};
  std::string source_ref;  // the remote ref to fetch
  if (is_commit_id(r.ref)) {
    check(git_oid_fromstr(&target, r.ref.c_str()), "bad commit id");
    Owned<git_odb, git_odb_free> odb;
    check(git_repository_odb(&odb.p, repo_), "opening the mirror");
    if (git_odb_exists(odb.p, &target) == 0) source_ref = "refs/heads/*";
  } else {
    // One round trip: what does the remote advertise for the ref?
    if (git_remote_connect(remote.p, GIT_DIRECTION_FETCH, &callbacks, nullptr, nullptr) < 0) {
      throw fail(fmt::format("cannot reach {}", r.url));
    }
    const git_remote_head** heads = nullptr;
    size_t count = 0;
    check(git_remote_ls(&heads, &count, remote.p), "listing remote refs");
    const std::vector<std::string> wanted =
        r.ref == "HEAD"
            ? std::vector<std::string>{"HEAD"}
            : std::vector<std::string>{"refs/heads/" + r.ref, "refs/tags/" + r.ref, r.ref};
    bool found = false;
    for (const std::string& name : wanted) {
      for (size_t i = 0; i < count && !found; ++i) {
        if (name == heads[i]->name) {
          target = heads[i]->oid;
          source_ref = name;
          found = true;
        }
      }
      // An annotated tag: prefer the commit it points to.
      for (size_t i = 0; i < count && found; ++i) {
        if (name + "^{}" == heads[i]->name) target = heads[i]->oid;
      }
      if (found) break;
    }
    git_remote_disconnect(remote.p);
    if (!found) {
      throw SyncError(
          fmt::format("ref '{}' not found in {} (a deleted branch, or a typo)", r.ref, r.url));
    }
    Owned<git_odb, git_odb_free> odb;
    check(git_repository_odb(&odb.p, repo_), "opening the mirror");
    if (git_odb_exists(odb.p, &target) != 0) source_ref.clear();  // already here
  }

  if (!source_ref.empty()) {
    const std::string spec = source_ref == "refs/heads/*"
                                 ? std::string("+refs/heads/*:refs/sidecar/heads/*")
                                 : fmt::format("+{}:refs/sidecar/target", source_ref);
    char* specs[] = {const_cast<char*>(spec.c_str())};
    git_strarray refspecs{specs, 1};
    git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
    opts.callbacks = callbacks;
    opts.prune = GIT_FETCH_NO_PRUNE;
    opts.update_fetchhead = 0;
    opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    cb.credential_calls = 0;
    if (git_remote_fetch(remote.p, &refspecs, &opts, nullptr) < 0) {
      throw fail(fmt::format("fetching {} from {}", r.ref, r.url));
    }
  }

  Owned<git_object, git_object_free> object;
  if (git_object_lookup(&object.p, repo_, &target, GIT_OBJECT_ANY) < 0) {
    throw SyncError(fmt::format("commit {} not found in {}", r.ref, r.url));
  }
  Owned<git_object, git_object_free> commit;
  check(git_object_peel(&commit.p, object.p, GIT_OBJECT_COMMIT),
        fmt::format("{} is not a commit", r.ref));
  char id[GIT_OID_HEXSZ + 1];
  git_oid_tostr(id, sizeof(id), git_object_id(commit.p));
  return id;
}

void GitSource::checkout(const std::string& commit_id, const std::string& dir) {
  open();
  git_oid oid{};
  check(git_oid_fromstr(&oid, commit_id.c_str()), "bad commit id");
  Owned<git_commit, git_commit_free> commit;
  check(git_commit_lookup(&commit.p, repo_, &oid), "reading the commit");
  Owned<git_tree, git_tree_free> tree;
  check(git_commit_tree(&tree.p, commit.p), "reading the tree");
  Walk walk{repo_, dir, {}};
  if (git_tree_walk(tree.p, GIT_TREEWALK_PRE, on_entry, &walk) < 0) {
    throw SyncError(walk.error.empty() ? last_error("writing the tree") : walk.error);
  }
}

}  // namespace sidecar::sync
