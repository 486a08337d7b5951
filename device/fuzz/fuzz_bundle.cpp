// libFuzzer target: the bundle parser and streaming verifier on arbitrary bytes.
// Property checked besides memory safety (ASan/UBSan): the verdict does not depend on how the input is
// chunked. The crypto (support/accepting_crypto.h) hashes with mbedTLS but accepts every signature by the
// trusted key id, so the fuzzer reaches the policy and payload-hash code behind the signature check (seeds
// are the tests/vectors bundles, signed by key "a").
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "support/accepting_crypto.h"
#include "tinyfleet/stream_verifier.h"

using namespace tinyfleet;

namespace {

// tests/vectors/keys/a.pub.der
const uint8_t kKeyA[91] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0xa5, 0x65, 0xe2, 0xd0, 0x89, 0xa4, 0x7e, 0x76, 0x09, 0xf0, 0x80,
    0xa5, 0xab, 0x90, 0xf1, 0x7f, 0xad, 0xe4, 0xe4, 0x26, 0xee, 0x59, 0x6e, 0x56, 0x3f, 0x3e, 0x98, 0xda, 0xc4, 0xc3,
    0x84, 0x3f, 0x45, 0x03, 0x88, 0xcb, 0x47, 0x64, 0x33, 0x65, 0x76, 0x4c, 0xaa, 0x69, 0x45, 0x6b, 0x87, 0x15, 0x6d,
    0x8a, 0xdd, 0x82, 0xd2, 0xb6, 0x3f, 0x90, 0x0c, 0xa6, 0x7e, 0x73, 0xc0, 0x8e, 0xb7, 0xba};

fuzzsupport::AcceptingCrypto g_crypto;
TrustedKey g_key;
VerifyPolicy g_policy;
StreamVerifier* g_whole;
StreamVerifier* g_chunked;

Status run(StreamVerifier& v, const uint8_t* data, size_t size, size_t chunk) {
  v.reset();
  Status s = Status::NeedMoreBytes;
  for (size_t off = 0; off < size && (s == Status::NeedMoreBytes || s == Status::Ok); off += chunk)
    s = v.feed(data + off, size - off < chunk ? size - off : chunk);
  if (s == Status::NeedMoreBytes || s == Status::Ok) s = v.finish();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_key.der = kKeyA;
  g_key.der_len = sizeof kKeyA;
  compute_key_id(g_crypto, g_key);
  g_policy.hardware_class = "stm32l4";
  g_policy.device_id = "dev-0001";
  g_policy.min_counter = 3;
  g_policy.now = 1790000000;
  g_policy.keys = &g_key;
  g_policy.key_count = 1;
  // Static storage: the verifiers hold a 4.8 KiB prefix buffer each.
  static StreamVerifier whole(g_crypto, g_policy), chunked(g_crypto, g_policy);
  g_whole = &whole;
  g_chunked = &chunked;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  BundleInfo info;
  (void)parse_prefix(data, size, info);
  Status a = run(*g_whole, data, size, size + 1);
  size_t chunk = size > 0 ? 1 + data[size - 1] % 61 : 1;
  Status b = run(*g_chunked, data, size, chunk);
  if (a != b) std::abort();  // verdict depends on chunking
  return 0;
}
