// Test-only bundle writer (docs/bundle-format.md layout) and an ECDSA P-256 signer over mbedTLS with a
// deterministic key, so C++ tests can make valid, signed bundles of any shape without Python.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tftest {

class TestSigner {
 public:
  explicit TestSigner(const std::string& seed);
  ~TestSigner();
  TestSigner(const TestSigner&) = delete;
  TestSigner& operator=(const TestSigner&) = delete;
  const std::vector<uint8_t>& public_der() const { return der_; }
  std::vector<uint8_t> key_id() const;  // first 8 bytes of SHA-256(DER)
  std::vector<uint8_t> sign(const uint8_t* data, size_t len) const;  // DER ECDSA-Sig-Value, RFC 6979, low s
  // Another valid signature of the same bytes (a random nonce from the signer's DRBG), low s.
  std::vector<uint8_t> sign_with_fresh_nonce(const uint8_t* data, size_t len) const;

 private:
  struct Impl;
  Impl* impl_;
  std::vector<uint8_t> der_;
};

struct BundleSpec {
  std::string bundle_id = "test-1.0.0";
  std::string hardware_class = "stm32l4";
  std::string device_scope;  // empty = none
  uint32_t security_counter = 1;
  uint64_t created = 1700000000;
  uint64_t expires = 0;  // 0 = none
  uint8_t min_battery_pct = 20;
  std::string feature_extractor = "vib-window-v1";  // the one this firmware has (features.h)
  // Payloads in type order: firmware, model, thresholds, calibration, health vectors.
  std::vector<uint8_t> payloads[5];
  std::string versions[5] = {"1.0.0", "1.0.0", "1", "1", "1"};
};

// Payload of `len` bytes derived from `seed` (distinct seeds give distinct bytes).
std::vector<uint8_t> pattern(size_t len, uint32_t seed);

// A spec with five small payloads (total about 2.5 KiB) derived from `seed`.
BundleSpec small_spec(uint32_t seed);

// The manifest TLV for a spec.
std::vector<uint8_t> encode_manifest(const BundleSpec& spec);

// Whole bundle; signed by `signer`, or with a structurally valid dummy signature when null.
std::vector<uint8_t> build_bundle(const BundleSpec& spec, const TestSigner* signer);

// Re-sign a bundle in place after its signed region was edited.
void resign(std::vector<uint8_t>& bundle, const TestSigner& signer);

}  // namespace tftest

namespace tftest {

// DER SubjectPublicKeyInfo of the P-256 key whose private scalar is SHA-256(seed) read big-endian: the
// derivation tests/vectors/generate.py uses for its keys A, B and U.
std::vector<uint8_t> derive_public_der(const std::string& seed);

}  // namespace tftest
