// What ACME keeps across restarts, under `acme.storage`:
//
//   account.key                    the account's ECDSA P-256 key (PKCS#8 PEM)
//   account.json                   {"directory":..,"url":..,"contact":..}
//   certificates/<SERIAL>/cert.pem the chain, leaf first
//   certificates/<SERIAL>/key.pem  its private key
//   certificates/<SERIAL>/meta.json {"directory":..,"domains":[..],"issued_at":..}
//   current -> certificates/<SERIAL>
//
// Files are 0600 and directories 0700, each file written to a temporary
// name, fsynced and renamed; a certificate's directory is complete before
// the `current` symlink is switched to it (a new symlink renamed over the
// old one), so `current/cert.pem` and `current/key.pem` always match, also
// for other readers and after a crash. The previous certificate is kept,
// older ones are removed.
//
// Errors: writes throw std::runtime_error naming the path; reads of a
// missing or damaged file return nothing (the caller obtains a new one).
// Thread safety: one Storage per thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "acme/jose.h"

namespace sidecar::acme {

struct StoredAccount {
  std::string directory;  // the ACME server it belongs to
  std::string url;        // the account URL ("kid")
  std::string contact;    // "mailto:..." or ""
};

struct StoredCertificate {
  std::string cert_pem;  // chain, leaf first
  std::string key_pem;
  std::string directory;
  std::vector<std::string> domains;  // as ordered
  int64_t issued_at = 0;             // seconds since the epoch
  std::string path;                  // its directory (set by load and save)
};

class Storage {
 public:
  explicit Storage(std::string dir) : dir_(std::move(dir)) {}

  // Creates the directory (0700) if needed. Throws.
  void prepare() const;
  const std::string& dir() const { return dir_; }

  // The account key; generated and written first when there is none
  // (`created` says so). Throws when the file exists but is not a P-256 key.
  PrivateKey account_key(bool& created) const;
  std::optional<StoredAccount> account() const;
  void save_account(const StoredAccount& account) const;
  // Forgets the account (the server no longer knows it); the key stays.
  void forget_account() const;

  // The certificate `current` points to.
  std::optional<StoredCertificate> certificate() const;
  // Stores a new certificate under `serial` and switches `current` to it.
  // Returns its directory.
  std::string save_certificate(const StoredCertificate& certificate,
                               const std::string& serial) const;

 private:
  std::string dir_;
};

// Writes `content` to `path` with `mode`: a temporary file in the same
// directory, fsync, rename, fsync of the directory. Throws.
void write_file_atomic(const std::string& path, const std::string& content, unsigned mode = 0600);

}  // namespace sidecar::acme
