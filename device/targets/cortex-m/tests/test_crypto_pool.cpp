// mbedTLS on the Cortex-M4 allocates from a static pool (mbedtls/mbedtls_pool.h): the smallest pool with
// which a valid bundle's signature still verifies, found by bisection, checked against the pool the image
// ships with (TINYFLEET_MBEDTLS_POOL_SIZE). Cortex-M only: host builds use mbedTLS with the libc heap.
#include <cstring>

#include "mbedtls_pool.h"
#include "semihost.h"
#include "tinytest.h"
#include "vector_verdicts.h"

using namespace tinyfleet;
using tftarget::policy_for;
using tftarget::verdict;

TT_TEST(CryptoPool, SmallestPool) {
  const tfvec::Vector* valid = nullptr;
  for (size_t i = 0; i < tfvec::kVectorCount && valid == nullptr; ++i)
    if (std::strcmp(tfvec::kVectors[i].expect, "ok") == 0) valid = &tfvec::kVectors[i];
  TT_ASSERT(valid != nullptr);
  TrustedKey keys[4];
  cortexm::mbedtls_pool_init();
  const VerifyPolicy policy = policy_for(*valid, keys);
  size_t lo = 0, hi = TINYFLEET_MBEDTLS_POOL_SIZE;  // lo fails, hi verifies
  cortexm::mbedtls_pool_init_with(hi);
  TT_ASSERT_STATUS(verdict(*valid, policy, valid->len), Status::Ok);
  cortexm::mbedtls_pool_init_with(64);
  // Allocation fails: the core reports any crypto port failure as BadSignature (check_signature).
  TT_ASSERT_STATUS(verdict(*valid, policy, valid->len), Status::BadSignature);
  lo = 64;
  while (hi - lo > 8) {
    const size_t mid = (lo + hi) / 2;
    cortexm::mbedtls_pool_init_with(mid);
    (verdict(*valid, policy, valid->len) == Status::Ok ? hi : lo) = mid;
  }
  cortexm::mbedtls_pool_init();
  tinyfleet::semihost::write("  [crypto] smallest mbedTLS pool that verifies a P-256 bundle signature: ");
  tinyfleet::semihost::write_u32(static_cast<uint32_t>(hi));
  tinyfleet::semihost::write(" bytes (pool in the image: ");
  tinyfleet::semihost::write_u32(TINYFLEET_MBEDTLS_POOL_SIZE);
  tinyfleet::semihost::write(")\n");
  TT_EXPECT(hi <= TINYFLEET_MBEDTLS_POOL_SIZE);
}
