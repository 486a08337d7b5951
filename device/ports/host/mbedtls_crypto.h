// Crypto port over mbedTLS (Debian's 2.28 on the host; also compiles against 3.x as on ESP-IDF 5).
#pragma once

#include "tinyfleet/ports.h"

namespace tinyfleet::host {

class MbedtlsCrypto final : public Crypto {
 public:
  void sha256_start(Sha256Context& ctx) override;
  void sha256_update(Sha256Context& ctx, const uint8_t* data, size_t len) override;
  void sha256_finish(Sha256Context& ctx, uint8_t out[32]) override;
  Status ecdsa_p256_verify(const uint8_t* pubkey_der, size_t pubkey_len, const uint8_t digest[32],
                           const uint8_t* sig_der, size_t sig_len) override;
};

}  // namespace tinyfleet::host
