// Cortex-M test image: mbedTLS allocates from its static pool.
#include "mbedtls_pool.h"
#include "tests.h"

namespace tftarget {
void platform_init() { tinyfleet::cortexm::mbedtls_pool_init(); }
}  // namespace tftarget
