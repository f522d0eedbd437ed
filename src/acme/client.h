// An ACME client [RFC 8555] over libcurl: the directory, nonces, requests
// signed with the account key, and the resources an issuance goes through.
//
// Every request is HTTPS to the directory's server, verified against `ca`
// (or the OS bundle), with a User-Agent [RFC 8555 6.1], bounded by 30 s and
// by the attempt's deadline, and aborted within a second of a stop. Signed
// requests take a nonce from the last response's Replay-Nonce (or newNonce)
// and are sent again with a fresh one after badNonce [RFC 8555 6.5], up to
// 5 times. An error answer (4xx, 5xx) throws AcmeError with its problem
// document and Retry-After.
//
// Thread safety: one Client per thread.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "acme/jose.h"
#include "acme/messages.h"
#include "acme/schedule.h"

namespace sidecar::acme {

class AcmeError : public std::runtime_error {
 public:
  AcmeError(const std::string& what, Problem problem = {}, int status = 0,
            std::optional<std::chrono::seconds> retry_after = std::nullopt)
      : std::runtime_error(what),
        problem_(std::move(problem)),
        status_(status),
        retry_after_(retry_after) {}
  const Problem& problem() const { return problem_; }
  int status() const { return status_; }  // HTTP status; 0 without an answer
  std::optional<std::chrono::seconds> retry_after() const { return retry_after_; }
  bool is(std::string_view short_type) const { return problem_.short_type() == short_type; }

 private:
  Problem problem_;
  int status_;
  std::optional<std::chrono::seconds> retry_after_;
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string nonce;        // Replay-Nonce
  std::string location;     // Location
  std::string retry_after;  // Retry-After, as sent
  std::string content_type;
};

class Client {
 public:
  // `interrupt` aborts transfers and polls when stopped.
  Client(std::string directory_url, std::string ca_file, Interrupt& interrupt);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Requests after this time fail (one attempt's budget).
  void set_deadline(std::chrono::steady_clock::time_point deadline) { deadline_ = deadline; }
  // The account key, and its URL once known ("" before newAccount).
  void set_account(PrivateKey key, std::string kid);
  const std::string& kid() const { return kid_; }

  // GET directory (once, until forget_directory()).
  const Directory& directory();
  // After a failed attempt: fetch the directory again next time.
  void forget_directory() {
    directory_.reset();
    nonce_.clear();
  }
  // newAccount with the key's JWK, agreeing to the terms of service
  // [RFC 8555 7.3]. Returns the account URL; `created` is false when the
  // server already knew the key (200 instead of 201).
  std::string new_account(const std::string& contact, bool& created);
  // Replaces the account's contact [RFC 8555 7.3.2].
  void update_contact(const std::string& contact);
  // newOrder for `domains` [RFC 8555 7.4]; `url` receives the order URL.
  Order new_order(const std::vector<std::string>& domains, std::string& url);
  Order get_order(const std::string& url, std::optional<std::chrono::seconds>& retry_after);
  Authorization get_authorization(const std::string& url,
                                  std::optional<std::chrono::seconds>& retry_after);
  // Tells the server the challenge is ready to be validated [RFC 8555 7.5.1].
  void respond(const std::string& challenge_url);
  Order finalize(const std::string& finalize_url, const std::string& csr_der,
                 std::optional<std::chrono::seconds>& retry_after);
  // The certificate chain, PEM, leaf first [RFC 8555 7.4.2].
  std::string download(const std::string& certificate_url);

  // A signed POST (`payload` "" is POST-as-GET); throws AcmeError on an
  // error answer.
  HttpResponse post(const std::string& url, const std::string& payload,
                    const char* accept = nullptr);

 private:
  HttpResponse request(const char* method, const std::string& url, const std::string& body,
                       const char* accept);
  std::string take_nonce();
  [[noreturn]] void throw_error(const HttpResponse& r, const std::string& what);

  std::string directory_url_;
  std::string ca_file_;
  Interrupt& interrupt_;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  void* curl_ = nullptr;  // CURL*
  std::optional<Directory> directory_;
  std::string nonce_;
  PrivateKey key_;
  std::string kid_;
};

}  // namespace sidecar::acme
