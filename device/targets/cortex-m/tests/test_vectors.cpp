// Every bundle in tests/vectors gets, on the Cortex-M4, exactly the verdict index.json expects (the Python
// reference's), fed whole and in chunks of 1, 7, 64 and 1000 bytes; signatures are checked by mbedTLS
// compiled for the target, allocating from its static pool.
#include <cstring>
#include <initializer_list>
#include <new>

#include "mbedtls_crypto.h"
#include "mbedtls_pool.h"
#include "tests.h"
#include "tinyfleet/stream_verifier.h"
#include "vectors_data.h"

using namespace tinyfleet;

namespace {

host::MbedtlsCrypto g_crypto;

// Builds the verifier's policy for vector `v`; keys[] receives the trusted keys.
VerifyPolicy policy_for(const tfvec::Vector& v, TrustedKey (&keys)[4]) {
  for (uint8_t i = 0; i < v.trusted_count; ++i) {
    const tfvec::Key& k = tfvec::kKeys[v.trusted[i]];
    keys[i].der = k.der;
    keys[i].der_len = k.der_len;
    compute_key_id(g_crypto, keys[i]);
  }
  VerifyPolicy p;
  p.hardware_class = v.hardware_class;
  p.device_id = v.device_id;
  p.min_counter = v.min_counter;
  p.now = v.now;
  p.keys = keys;
  p.key_count = v.trusted_count;
  return p;
}

Status verdict(const tfvec::Vector& v, const VerifyPolicy& policy, size_t chunk) {
  static StreamVerifier* verifier = nullptr;
  alignas(StreamVerifier) static uint8_t storage[sizeof(StreamVerifier)];
  if (verifier != nullptr) verifier->~StreamVerifier();
  verifier = new (storage) StreamVerifier(g_crypto, policy);  // placement: the policy differs per vector
  Status s = Status::NeedMoreBytes;
  for (size_t off = 0; off < v.len && (s == Status::NeedMoreBytes || s == Status::Ok); off += chunk) {
    const size_t n = chunk < v.len - off ? chunk : v.len - off;
    s = verifier->feed(v.data + off, n);
  }
  if (s == Status::NeedMoreBytes || s == Status::Ok) s = verifier->finish();
  return s;
}

bool verdict_is(Status s, const char* expect) {
  return std::strcmp(s == Status::Ok ? "ok" : status_name(s), expect) == 0;
}

}  // namespace

void test_vectors_key_ids() {
  cortexm::mbedtls_pool_init();
  TT_ASSERT(tfvec::kKeyCount >= 2);
  for (size_t i = 0; i < tfvec::kKeyCount; ++i) {
    TrustedKey key;
    key.der = tfvec::kKeys[i].der;
    key.der_len = tfvec::kKeys[i].der_len;
    compute_key_id(g_crypto, key);
    TT_EXPECT(std::memcmp(key.key_id, tfvec::kKeys[i].key_id, 8) == 0);
  }
}

void test_vectors_verdicts() {
  cortexm::mbedtls_pool_init();
  size_t valid = 0;
  TT_ASSERT(tfvec::kVectorCount >= 30);
  for (size_t i = 0; i < tfvec::kVectorCount; ++i) {
    const tfvec::Vector& v = tfvec::kVectors[i];
    tt::note(v.file);
    TrustedKey keys[4];
    const VerifyPolicy policy = policy_for(v, keys);
    for (size_t chunk : {size_t{v.len} + 1, size_t{1}, size_t{7}, size_t{64}, size_t{1000}}) {
      const Status s = verdict(v, policy, chunk);
      if (!TT_EXPECT(verdict_is(s, v.expect))) {
        tinyfleet::semihost::write("    got ");
        tinyfleet::semihost::write(s == Status::Ok ? "ok" : status_name(s));
        tinyfleet::semihost::write(", expected ");
        tinyfleet::semihost::write(v.expect);
        tinyfleet::semihost::write("\n");
      }
    }
    valid += std::strcmp(v.expect, "ok") == 0;
  }
  tt::note(nullptr);
  TT_EXPECT(valid >= 1);
  tinyfleet::semihost::write("  [vectors] ");
  tinyfleet::semihost::write_u32(static_cast<uint32_t>(tfvec::kVectorCount));
  tinyfleet::semihost::write(" bundle vectors checked on the Cortex-M4 (");
  tinyfleet::semihost::write_u32(static_cast<uint32_t>(valid));
  tinyfleet::semihost::write(" valid), 5 chunkings each\n");
}

// The smallest mbedTLS pool with which a valid bundle's signature still verifies, found by bisection, and
// checked against the pool the image ships with (TINYFLEET_MBEDTLS_POOL_SIZE).
void test_crypto_smallest_pool() {
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
