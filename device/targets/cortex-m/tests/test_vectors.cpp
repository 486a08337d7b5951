// Every bundle in tests/vectors gets, on the Cortex-M4, exactly the verdict index.json expects (the Python
// reference's), fed whole and in chunks of 1, 7, 64 and 1000 bytes; signatures are checked by mbedTLS
// compiled for the target (allocating from its static pool there; from the heap in the native build).
#include <cstring>
#include <initializer_list>
#include <new>

#include "mbedtls_crypto.h"
#include "semihost.h"
#include "tinytest.h"
#include "tinyfleet/stream_verifier.h"
#include "vector_verdicts.h"
#include "vectors_data.h"

using namespace tinyfleet;

namespace {
host::MbedtlsCrypto g_crypto;
}  // namespace

namespace tftarget {

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

}  // namespace tftarget

namespace {
using tftarget::policy_for;
using tftarget::verdict;

bool verdict_is(Status s, const char* expect) {
  return std::strcmp(s == Status::Ok ? "ok" : status_name(s), expect) == 0;
}

}  // namespace

TT_TEST(Vectors, KeyIds) {
  TT_ASSERT(tfvec::kKeyCount >= 2);
  for (size_t i = 0; i < tfvec::kKeyCount; ++i) {
    TrustedKey key;
    key.der = tfvec::kKeys[i].der;
    key.der_len = tfvec::kKeys[i].der_len;
    compute_key_id(g_crypto, key);
    TT_EXPECT(std::memcmp(key.key_id, tfvec::kKeys[i].key_id, 8) == 0);
  }
}

TT_TEST(Vectors, Verdicts) {
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
