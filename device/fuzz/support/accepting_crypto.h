// The host crypto port with real SHA-256 (mbedTLS) but an ECDSA check that accepts every signature. A
// fuzzer cannot forge a signature, so with the real check it would never get past it: this lets the fuzz
// targets reach the policy, payload-hash and download code behind it. The signature check itself is covered
// by the tests (tests/vectors) and by fuzz_bundle's parse of the signature block.
#pragma once

#include "mbedtls_crypto.h"

namespace fuzzsupport {

class AcceptingCrypto final : public tinyfleet::Crypto {
 public:
  void sha256_start(tinyfleet::Sha256Context& c) override { real_.sha256_start(c); }
  void sha256_update(tinyfleet::Sha256Context& c, const uint8_t* d, size_t n) override {
    real_.sha256_update(c, d, n);
  }
  void sha256_finish(tinyfleet::Sha256Context& c, uint8_t out[32]) override { real_.sha256_finish(c, out); }
  tinyfleet::Status ecdsa_p256_verify(const uint8_t*, size_t, const uint8_t*, const uint8_t*, size_t) override {
    return tinyfleet::Status::Ok;
  }

 private:
  tinyfleet::host::MbedtlsCrypto real_;
};

}  // namespace fuzzsupport
