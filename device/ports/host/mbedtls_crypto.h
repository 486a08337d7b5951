// Crypto port over mbedTLS (Debian's 2.28 on the host; also compiles against 3.x as on ESP-IDF 5).
#pragma once

#include "tinyfleet/ports.h"

namespace tinyfleet::host {

// The one encoding of an ECDSA P-256 signature a bundle may carry: strict DER (short-form lengths, minimal
// non-negative INTEGERs, nothing after the SEQUENCE) and low s (s <= n / 2, as Bitcoin and Ethereum require).
// mbedTLS alone also accepts BER variants and the high-s twin (r, n - s), each a second digest for one bundle.
bool canonical_low_s_der(const uint8_t* sig, size_t len);

// ecdsa_p256_verify refuses (BadSignature) any signature canonical_low_s_der refuses, before mbedTLS sees it.
class MbedtlsCrypto final : public Crypto {
 public:
  void sha256_start(Sha256Context& ctx) override;
  void sha256_update(Sha256Context& ctx, const uint8_t* data, size_t len) override;
  void sha256_finish(Sha256Context& ctx, uint8_t out[32]) override;
  Status ecdsa_p256_verify(const uint8_t* pubkey_der, size_t pubkey_len, const uint8_t digest[32],
                           const uint8_t* sig_der, size_t sig_len) override;
};

}  // namespace tinyfleet::host
