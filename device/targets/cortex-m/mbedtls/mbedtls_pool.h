// The static memory mbedTLS allocates from on the Cortex-M images (no malloc). Call mbedtls_pool_init()
// once at startup, before the crypto port is used.
#pragma once

#include <cstddef>
#include <cstdint>

// Bytes of the pool. One P-256 verification at a time needs less than this: the QEMU test
// "CryptoPool.SmallestPool" measures the smallest pool that verifies and checks it against this size.
#ifndef TINYFLEET_MBEDTLS_POOL_SIZE
#define TINYFLEET_MBEDTLS_POOL_SIZE 4096
#endif

namespace tinyfleet::cortexm {

void mbedtls_pool_init();
// Re-initialise the allocator over the first `len` bytes of the pool (tests measuring the pool need).
void mbedtls_pool_init_with(size_t len);

}  // namespace tinyfleet::cortexm
