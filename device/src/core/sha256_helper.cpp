#include "tinyfleet/ports.h"

namespace tinyfleet {

void sha256(Crypto& crypto, const uint8_t* data, size_t len, uint8_t out[32]) {
  Sha256Context ctx;
  crypto.sha256_start(ctx);
  crypto.sha256_update(ctx, data, len);
  crypto.sha256_finish(ctx, out);
}

}  // namespace tinyfleet
