#include "mbedtls_pool.h"

#include <mbedtls/memory_buffer_alloc.h>

extern "C" void tinyfleet_mbedtls_exit(int) { __builtin_trap(); }

namespace tinyfleet::cortexm {
namespace {
alignas(8) unsigned char g_pool[TINYFLEET_MBEDTLS_POOL_SIZE];
}

void mbedtls_pool_init() { mbedtls_pool_init_with(sizeof g_pool); }

void mbedtls_pool_init_with(size_t len) {
  if (len > sizeof g_pool) len = sizeof g_pool;
  mbedtls_memory_buffer_alloc_init(g_pool, len);
}

}  // namespace tinyfleet::cortexm
