// Parser and streaming verifier on bundles built in C++ (tests/support/bundle_builder): incremental
// feeding, early verdicts, parsed fields, trust and policy.
#include <gtest/gtest.h>

#include <cstring>
#include <new>
#include <vector>

#include "mbedtls_crypto.h"
#include "support/bundle_builder.h"
#include "tinyfleet/bundle_parser.h"
#include "tinyfleet/stream_verifier.h"

using namespace tinyfleet;

namespace {

struct Fixture {
  host::MbedtlsCrypto crypto;
  tftest::TestSigner signer{"bundle-tests"};
  TrustedKey key;
  VerifyPolicy policy;
  Fixture() {
    key.der = signer.public_der().data();
    key.der_len = static_cast<uint16_t>(signer.public_der().size());
    compute_key_id(crypto, key);
    policy.hardware_class = "stm32l4";
    policy.device_id = "dev-1";
    policy.min_counter = 1;
    policy.now = 1700000100;
    policy.keys = &key;
    policy.key_count = 1;
  }
  Status verify(const std::vector<uint8_t>& b, size_t chunk = 4096) {
    StreamVerifier v(crypto, policy);
    Status s = Status::NeedMoreBytes;
    for (size_t off = 0; off < b.size() && (s == Status::NeedMoreBytes || s == Status::Ok); off += chunk)
      s = v.feed(b.data() + off, std::min(chunk, b.size() - off));
    return (s == Status::NeedMoreBytes || s == Status::Ok) ? v.finish() : s;
  }
};

}  // namespace

TEST(BundleParser, ParsesEveryFieldOfAValidBundle) {
  Fixture f;
  auto spec = tftest::small_spec(7);
  spec.expires = 1800000000;
  spec.device_scope = "dev-1";
  auto b = tftest::build_bundle(spec, &f.signer);
  BundleInfo info;
  ASSERT_EQ(parse_prefix(b.data(), b.size(), info), Status::Ok);
  EXPECT_STREQ(info.manifest.bundle_id, "test-7");
  EXPECT_STREQ(info.manifest.hardware_class, "stm32l4");
  EXPECT_STREQ(info.manifest.device_scope, "dev-1");
  EXPECT_TRUE(info.manifest.has_expires);
  EXPECT_EQ(info.manifest.expires, 1800000000u);
  EXPECT_EQ(info.manifest.min_battery_pct, 20);
  EXPECT_EQ(info.manifest.input.nbytes(), 8u);
  EXPECT_EQ(info.manifest.output.nbytes(), 4u);
  EXPECT_FLOAT_EQ(info.manifest.input.scale, 0.0078125f);
  EXPECT_EQ(info.manifest.input.zero_point, -3);
  ASSERT_EQ(info.component_count, 5);
  EXPECT_EQ(info.find(ComponentType::Model), 1);
  EXPECT_EQ(info.components[0].length, spec.payloads[0].size());
  EXPECT_EQ(info.components[0].offset, info.header.payload_offset);
  EXPECT_EQ(info.header.total_len, b.size());
  EXPECT_EQ(check_signature(info, b.data(), f.crypto, f.policy), Status::Ok);
  EXPECT_EQ(check_policy(info, f.policy), Status::Ok);
}

// BundleInfo's constructor zeroes the whole object and sets the component types: that is its members' own
// defaults only while those are all zero but ComponentEntry::type. This fails when one of them changes.
template <typename T>
void expect_default_bytes(const T& actual) {
  alignas(T) unsigned char want[sizeof(T)] = {};
  new (want) T();
  EXPECT_EQ(std::memcmp(want, &actual, sizeof(T)), 0);
}

TEST(BundleParser, DefaultBundleInfoHoldsItsMembersDefaults) {
  BundleInfo info;
  expect_default_bytes(info.header);
  expect_default_bytes(info.manifest);
  EXPECT_EQ(info.component_count, 0);
  for (const ComponentEntry& c : info.components) expect_default_bytes(c);
  expect_default_bytes(info.signature);
}

TEST(BundleParser, NeedsMoreBytesUntilThePrefixIsComplete) {
  Fixture f;
  auto b = tftest::build_bundle(tftest::small_spec(1), &f.signer);
  BundleInfo info;
  BundleHeader h;
  EXPECT_EQ(parse_header(b.data(), 0, h), Status::NeedMoreBytes);
  EXPECT_EQ(parse_header(b.data(), 31, h), Status::NeedMoreBytes);
  ASSERT_EQ(parse_header(b.data(), 32, h), Status::Ok);
  EXPECT_EQ(parse_prefix(b.data(), h.payload_offset - 1, info), Status::NeedMoreBytes);
  EXPECT_EQ(parse_prefix(b.data(), h.payload_offset, info), Status::Ok);
}

TEST(BundleParser, WrongMagicIsReportedFromTheFirstByte) {
  uint8_t one = 0x50;
  BundleHeader h;
  EXPECT_EQ(parse_header(&one, 1, h), Status::BadMagic);
  Fixture f;
  StreamVerifier v(f.crypto, f.policy);
  EXPECT_EQ(v.feed(&one, 1), Status::BadMagic);
  EXPECT_EQ(v.feed(&one, 1), Status::BadMagic);  // sticky
  EXPECT_EQ(v.finish(), Status::BadMagic);
}

TEST(BundleParser, ManifestRules) {
  Manifest m;
  auto good = tftest::encode_manifest(tftest::small_spec(1));
  EXPECT_EQ(parse_manifest(good.data(), good.size(), m), Status::Ok);
  // Truncated entry header, duplicate tag, unknown critical tag, bad class character, expires <= created.
  EXPECT_EQ(parse_manifest(good.data(), good.size() - 1, m), Status::MalformedManifest);
  std::vector<uint8_t> dup = good;
  dup.insert(dup.end(), good.begin(), good.begin() + 4 + good[2]);
  EXPECT_EQ(parse_manifest(dup.data(), dup.size(), m), Status::MalformedManifest);
  std::vector<uint8_t> crit = good;
  crit.insert(crit.end(), {0x01, 0x80, 0x00, 0x00});
  EXPECT_EQ(parse_manifest(crit.data(), crit.size(), m), Status::MalformedManifest);
  std::vector<uint8_t> noncrit = good;
  noncrit.insert(noncrit.end(), {0x01, 0x70, 0x02, 0x00, 'h', 'i'});
  EXPECT_EQ(parse_manifest(noncrit.data(), noncrit.size(), m), Status::Ok);
  auto spec = tftest::small_spec(1);
  spec.hardware_class = "STM32";
  auto upper = tftest::encode_manifest(spec);
  EXPECT_EQ(parse_manifest(upper.data(), upper.size(), m), Status::MalformedManifest);
  spec = tftest::small_spec(1);
  spec.expires = spec.created;
  auto exp = tftest::encode_manifest(spec);
  EXPECT_EQ(parse_manifest(exp.data(), exp.size(), m), Status::MalformedManifest);
}

TEST(StreamVerifier, AcceptsAValidBundleInAnyChunking) {
  Fixture f;
  auto b = tftest::build_bundle(tftest::small_spec(3), &f.signer);
  for (size_t chunk : {size_t{1}, size_t{13}, size_t{256}, b.size()}) EXPECT_EQ(f.verify(b, chunk), Status::Ok) << chunk;
}

TEST(StreamVerifier, ChecksTheSignatureBeforeAnyPayloadByte) {
  Fixture f;
  auto b = tftest::build_bundle(tftest::small_spec(3), &f.signer);
  BundleInfo info;
  ASSERT_EQ(parse_prefix(b.data(), b.size(), info), Status::Ok);
  StreamVerifier v(f.crypto, f.policy);
  EXPECT_EQ(v.feed(b.data(), info.header.payload_offset), Status::NeedMoreBytes);
  EXPECT_TRUE(v.prefix_verified());
  EXPECT_EQ(v.verified_components(), 0);
  // A flipped bit in the manifest: refused at the prefix, no payload needed.
  auto bad = b;
  bad[40] ^= 1;
  StreamVerifier w(f.crypto, f.policy);
  Status s = w.feed(bad.data(), info.header.payload_offset);
  EXPECT_TRUE(s == Status::BadSignature || s == Status::MalformedManifest) << status_name(s);
  EXPECT_FALSE(w.prefix_verified());
}

TEST(StreamVerifier, ReportsTheHashMismatchAsSoonAsTheComponentEnds) {
  Fixture f;
  auto b = tftest::build_bundle(tftest::small_spec(3), &f.signer);
  BundleInfo info;
  ASSERT_EQ(parse_prefix(b.data(), b.size(), info), Status::Ok);
  const ComponentEntry& fw = info.components[0];
  b[fw.offset + 5] ^= 0x80;
  StreamVerifier v(f.crypto, f.policy);
  EXPECT_EQ(v.feed(b.data(), fw.end() - 1), Status::NeedMoreBytes);
  EXPECT_EQ(v.feed(b.data() + fw.end() - 1, 1), Status::HashMismatch);
}

TEST(StreamVerifier, TrustAndPolicyVerdicts) {
  Fixture f;
  auto spec = tftest::small_spec(4);
  spec.security_counter = 5;
  spec.expires = 1700000100;  // == policy.now: expired ("at or past")
  auto b = tftest::build_bundle(spec, &f.signer);
  EXPECT_EQ(f.verify(b), Status::Expired);
  f.policy.now = 1700000099;
  EXPECT_EQ(f.verify(b), Status::Ok);
  f.policy.min_counter = 6;
  EXPECT_EQ(f.verify(b), Status::CounterTooLow);
  f.policy.min_counter = 5;
  f.policy.hardware_class = "esp32s3";
  EXPECT_EQ(f.verify(b), Status::WrongHardwareClass);
  f.policy.hardware_class = nullptr;  // not checked
  EXPECT_EQ(f.verify(b), Status::Ok);
  tftest::TestSigner other("someone-else");
  auto foreign = tftest::build_bundle(spec, &other);
  EXPECT_EQ(f.verify(foreign), Status::UnknownKeyId);
  // Same key id, other key: the signature does not verify.
  TrustedKey impostor = f.key;
  impostor.der = other.public_der().data();
  impostor.der_len = static_cast<uint16_t>(other.public_der().size());
  f.policy.keys = &impostor;
  EXPECT_EQ(f.verify(b), Status::BadSignature);
}

TEST(StreamVerifier, ScopedBundleOnlyForItsDevice) {
  Fixture f;
  auto spec = tftest::small_spec(5);
  spec.device_scope = "dev-2";
  auto b = tftest::build_bundle(spec, &f.signer);
  EXPECT_EQ(f.verify(b), Status::WrongDevice);
  f.policy.device_id = "dev-2";
  EXPECT_EQ(f.verify(b), Status::Ok);
}

TEST(StreamVerifier, LengthVerdicts) {
  Fixture f;
  auto b = tftest::build_bundle(tftest::small_spec(6), &f.signer);
  auto shorter = std::vector<uint8_t>(b.begin(), b.end() - 1);
  EXPECT_EQ(f.verify(shorter), Status::Truncated);
  auto longer = b;
  longer.push_back(0);
  EXPECT_EQ(f.verify(longer), Status::OutOfRange);
  EXPECT_EQ(f.verify(longer, 1), Status::OutOfRange);
  auto header_only = std::vector<uint8_t>(b.begin(), b.begin() + 20);
  EXPECT_EQ(f.verify(header_only), Status::Truncated);
}

TEST(StreamVerifier, ShortFileWithAWrongMagicIsBadMagicHoweverItArrives) {
  // Found by fuzz_bundle: 8..31 bytes in one chunk were reported Truncated, byte by byte BadMagic.
  Fixture f;
  std::vector<uint8_t> b = {0x89, 0x42, 0x0d, 0x0a, 0x1a, 0x0a, 0x01, 0x00, 0x20, 0x05, 0x54, 0x46};
  EXPECT_EQ(f.verify(b), Status::BadMagic);
  EXPECT_EQ(f.verify(b, 1), Status::BadMagic);
}

TEST(StreamVerifier, HashesTheBytesBeforeTotalLenFirstSoTheVerdictIgnoresChunking) {
  // A bad last payload and trailing bytes: whole-file order (payload hashes, then the file length) gives
  // HashMismatch, and so does every chunking of the stream.
  Fixture f;
  auto b = tftest::build_bundle(tftest::small_spec(8), &f.signer);
  b[b.size() - 1] ^= 1;
  b.push_back(0);
  for (size_t chunk : {size_t{1}, size_t{100}, b.size()}) EXPECT_EQ(f.verify(b, chunk), Status::HashMismatch) << chunk;
}
