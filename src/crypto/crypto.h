// Cryptography for the security filters (jwt_authn, api_key, basic_auth,
// rate_limit's script digest) as the rest of the process sees it: a table
// of entry points built by libsidecar-crypto.so (OpenSSL 3's libcrypto and
// libxcrypt), loaded the first time a filter that needs it is configured.
// A sidecar without those filters maps neither library (libcrypto alone is
// about 1.4 MiB of resident memory once its relocations are applied; see
// README "Idle process"). The same design as tls/tls.h.
//
// Test and fuzz executables link the implementation into themselves
// (CMake target sidecar_crypto_linked), which installs it at start-up, so
// they need no shared object next to them.
//
// Thread safety: library() is thread-safe; every entry point is reentrant.
// Keys are immutable once built and may be shared between threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>

struct evp_pkey_st;

namespace sidecar::crypto {

enum class Hash { kSha1, kSha256, kSha384, kSha512 };

// A public key (RSA, EC or Ed25519) of OpenSSL's, opaque outside the module.
using PublicKey = std::shared_ptr<evp_pkey_st>;

// The entry points of libsidecar-crypto.so. None throws (except bad_alloc).
struct Library {
  // The digest of `data` (20, 32, 48 or 64 bytes).
  std::string (*digest)(Hash hash, std::string_view data);
  // HMAC (RFC 2104) of `data` under `key`.
  std::string (*hmac)(Hash hash, std::string_view key, std::string_view data);
  // `n` random bytes from OpenSSL's CSPRNG into `out`.
  void (*random_bytes)(unsigned char* out, size_t n);
  // Public keys from their JWK parameters (RFC 7518 6.3, 6.2; RFC 8037),
  // as raw big-endian bytes; null when OpenSSL refuses them. RSA moduli
  // under 2048 bits are refused. `group` is OpenSSL's name
  // ("prime256v1", "secp384r1", "secp521r1"), `point` an uncompressed
  // point (0x04 || x || y), checked to lie on the curve.
  PublicKey (*rsa_public_key)(std::string_view n, std::string_view e);
  PublicKey (*ec_public_key)(const char* group, std::string_view point);
  PublicKey (*ed25519_public_key)(std::string_view x);
  // Whether `signature` over `input` verifies under `key` with JWS
  // algorithm `alg` (RS*, PS*, ES* with the JWS R || S encoding of RFC 7518
  // 3.4, EdDSA). The caller checks that the key fits the algorithm.
  bool (*verify)(const evp_pkey_st* key, std::string_view alg, std::string_view input,
                 std::string_view signature);
  // Whether `password` hashes to `hash` with crypt(5) (bcrypt, SHA-crypt,
  // yescrypt; libxcrypt's crypt_rn). Compares in constant time.
  bool (*crypt_matches)(std::string_view hash, std::string_view password);
};

inline constexpr const char* kLibrarySymbol = "sidecar_crypto_library";

// libsidecar-crypto.so's entry points, loading it once (or the linked-in
// implementation, see above). Throws std::runtime_error when it cannot be
// loaded. Call it first where a config is applied (a filter factory), not
// on a worker: loading maps files.
const Library& library();

// Installs a linked-in implementation (sidecar_crypto_linked does this
// from a static initializer).
void provide(const Library* library);

// Whether `a` and `b` are equal, in time that depends only on their sizes.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace sidecar::crypto
