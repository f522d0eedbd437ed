// The entry points of libsidecar-tls.so (tls/tls.h: Library).
#include <fmt/format.h>

#include "tls/certificate.h"
#include "tls/context.h"

namespace sidecar::tls {
namespace {

BuiltServer build_server(const config::ServerTls& config, const std::vector<PemPair>& pems,
                         const std::string& client_ca_pem,
                         const std::shared_ptr<void>& ticket_keys) {
  std::vector<ServedCertificate> served;
  BuiltServer out;
  for (const PemPair& p : pems) {
    served.push_back({p.source, KeyPair::from_pem(p.cert, p.key, p.source)});
    out.certificates.push_back(served.back().pair->info());
    out.certificates.back().source = p.source;
  }
  out.context = OpenSslServerContext::build(config, std::move(served), client_ca_pem,
                                            std::static_pointer_cast<TicketKeys>(ticket_keys));
  return out;
}

BuiltClient build_client(const config::ClientTls& config, const PemPair* client,
                         const std::string& ca_pem) {
  BuiltClient out;
  std::shared_ptr<const KeyPair> pair;
  if (client != nullptr) {
    pair = KeyPair::from_pem(client->cert, client->key, client->source);
    out.certificates.push_back(pair->info());
    out.certificates.back().source = client->source;
  }
  out.context = OpenSslClientContext::build(config, std::move(pair), ca_pem);
  return out;
}

std::shared_ptr<void> new_ticket_keys() { return std::make_shared<TicketKeys>(); }

void validate(const config::Config& c, std::vector<std::string>& errors) {
  auto check = [&](const std::string& origin, const std::string& where, auto&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      errors.push_back(fmt::format("{}: {}: {}", origin, where, e.what()));
    }
  };
  for (size_t i = 0; i < c.listeners.size(); ++i) {
    const config::ServerTls& t = c.listeners[i].tls;
    if (!t.enabled) continue;
    const std::string where = fmt::format("listeners[{}].tls", i);
    for (size_t k = 0; k < t.certificates.size(); ++k) {
      const auto& f = t.certificates[k];
      check(f.origin, fmt::format("{}.certificates[{}]", where, k),
            [&] { KeyPair::load(f.cert, f.key); });
    }
    if (!t.client_ca.empty()) {
      check(t.origin, where + ".client_ca", [&] { check_ca_file(t.client_ca); });
    }
  }
  for (size_t i = 0; i < c.clusters.size(); ++i) {
    const config::ClientTls& t = c.clusters[i].tls;
    if (!t.enabled) continue;
    const std::string where = fmt::format("clusters[{}].tls", i);
    if (t.ca != "system") check(t.origin, where + ".ca", [&] { check_ca_file(t.ca); });
    if (!t.cert.empty()) check(t.origin, where + ".cert", [&] { KeyPair::load(t.cert, t.key); });
  }
}

const Library kLibrary{&build_server, &build_client, &new_ticket_keys, &self_signed, &validate};

}  // namespace
}  // namespace sidecar::tls

extern "C" __attribute__((visibility("default"))) const sidecar::tls::Library*
sidecar_tls_library() {
  return &sidecar::tls::kLibrary;
}
