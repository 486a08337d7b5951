// Every bundle in tests/vectors/ gets exactly the verdict index.json expects (the Python reference's),
// whether the file arrives in one piece or in chunks of several sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "flash_emulator.h"
#include "mbedtls_crypto.h"
#include "support/bundle_builder.h"
#include "support/files.h"
#include "support/mini_json.h"
#include "tinyfleet/stream_verifier.h"

using namespace tinyfleet;

namespace {

const std::string kDir = TINYFLEET_VECTORS_DIR;

struct KeyFile {
  std::string id_hex;
  std::vector<uint8_t> der;
};

// The vector keys, derived as tests/vectors/generate.py derives them (scalar = SHA-256(seed)), so the test
// does not depend on the key files being present; when they are, they must match.
const char* const kKeySeeds[] = {"tinyfleet test vector key A", "tinyfleet test vector key B (rotation)",
                                 "tinyfleet test vector key U (never trusted)"};

std::string hex(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

std::vector<KeyFile> vector_keys(Crypto& crypto) {
  std::vector<KeyFile> keys;
  for (const char* seed : kKeySeeds) {
    KeyFile k;
    k.der = tftest::derive_public_der(seed);
    uint8_t digest[32];
    sha256(crypto, k.der.data(), k.der.size(), digest);
    k.id_hex = hex(digest, 8);
    keys.push_back(k);
  }
  return keys;
}

bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

tftest::Json load_index() {
  auto raw = tftest::read_file(kDir + "/index.json");
  std::string text(raw.begin(), raw.end());
  return tftest::JsonParser(text).parse();
}

std::string verdict(Crypto& crypto, const VerifyPolicy& policy, const std::vector<uint8_t>& file, size_t chunk) {
  StreamVerifier v(crypto, policy);
  Status s = Status::NeedMoreBytes;
  for (size_t off = 0; off < file.size() && (s == Status::NeedMoreBytes || s == Status::Ok); off += chunk) {
    size_t n = std::min(chunk, file.size() - off);
    s = v.feed(file.data() + off, n);
  }
  if (s == Status::NeedMoreBytes || s == Status::Ok) s = v.finish();
  return s == Status::Ok ? "ok" : status_name(s);
}

}  // namespace

TEST(Vectors, KeyIdsMatchTheIndex) {
  host::MbedtlsCrypto crypto;
  auto index = load_index();
  auto keys = vector_keys(crypto);
  ASSERT_GE(index["keys"].arr.size(), 2u);
  for (const auto& k : index["keys"].arr) {
    const KeyFile* match = nullptr;
    for (const auto& d : keys)
      if (d.id_hex == k["key_id"].str) match = &d;
    ASSERT_NE(match, nullptr) << "no derived key has id " << k["key_id"].str;
    const std::string path = kDir + "/" + k["der"].str;
    if (file_exists(path)) {
      EXPECT_EQ(tftest::read_file(path), match->der) << path;
    }
  }
}

TEST(Vectors, EveryVectorGetsItsExpectedVerdict) {
  host::MbedtlsCrypto crypto;
  auto index = load_index();
  ASSERT_EQ(index["format"].num, 1);
  std::vector<KeyFile> keys = vector_keys(crypto);

  size_t checked = 0, ok_count = 0;
  for (const auto& vec : index["vectors"].arr) {
    std::vector<TrustedKey> trusted;
    for (const auto& id : vec["trusted_keys"].arr) {
      for (const auto& k : keys) {
        if (k.id_hex != id.str) continue;
        TrustedKey t;
        t.der = k.der.data();
        t.der_len = static_cast<uint16_t>(k.der.size());
        compute_key_id(crypto, t);
        trusted.push_back(t);
      }
    }
    ASSERT_EQ(trusted.size(), vec["trusted_keys"].arr.size()) << vec["file"].str;
    VerifyPolicy policy;
    policy.hardware_class = vec["hardware_class"].str.c_str();
    policy.device_id = vec["device_id"].str.c_str();
    policy.min_counter = static_cast<uint32_t>(vec["min_counter"].num);
    policy.now = static_cast<uint64_t>(vec["now"].num);
    policy.keys = trusted.data();
    policy.key_count = trusted.size();

    auto file = tftest::read_file(kDir + "/" + vec["file"].str);
    const std::string& expect = vec["expect"].str;
    for (size_t chunk : {file.size() + 1, size_t{1}, size_t{7}, size_t{64}, size_t{1000}}) {
      EXPECT_EQ(verdict(crypto, policy, file, chunk), expect)
          << vec["file"].str << " (" << vec["description"].str << ") in chunks of " << chunk;
    }
    ++checked;
    ok_count += expect == "ok";
  }
  EXPECT_GE(checked, 30u);
  EXPECT_GE(ok_count, 1u);
  std::printf("[vectors] %zu bundle vectors checked (%zu valid)\n", checked, ok_count);
}

TEST(Vectors, SameContentVectorsShareTheSignedRegionNotTheDigest) {
  // "same_content_as": another valid bundle with the same content (docs/bundle-format.md, "Content").
  host::MbedtlsCrypto crypto;
  auto index = load_index();
  size_t checked = 0;
  for (const auto& vec : index["vectors"].arr) {
    if (!vec.has("same_content_as")) continue;
    auto a = tftest::read_file(kDir + "/" + vec["file"].str);
    auto b = tftest::read_file(kDir + "/" + vec["same_content_as"].str);
    BundleInfo ia, ib;
    ASSERT_EQ(parse_prefix(a.data(), a.size(), ia), Status::Ok) << vec["file"].str;
    ASSERT_EQ(parse_prefix(b.data(), b.size(), ib), Status::Ok) << vec["same_content_as"].str;
    ASSERT_EQ(ia.header.signed_len, ib.header.signed_len);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), ia.header.signed_len)) << vec["file"].str;
    uint8_t da[32], db[32];
    sha256(crypto, a.data(), ia.header.payload_offset, da);
    sha256(crypto, b.data(), ib.header.payload_offset, db);
    EXPECT_NE(0, std::memcmp(da, db, 32)) << vec["file"].str << ": the digests must differ";
    ++checked;
  }
  EXPECT_GE(checked, 1u);
}

TEST(Vectors, ParsingThroughAWindowGivesTheSameVerdictAndTable) {
  // Each vector is written into an emulated bank and parsed from there through a kPrefixWindowLen window,
  // as boot verification reads it; the verdict and the table must be those of the whole-buffer parse.
  auto index = load_index();
  size_t checked = 0;
  for (const auto& vec : index["vectors"].arr) {
    auto file = tftest::read_file(kDir + "/" + vec["file"].str);
    host::FlashEmulator flash(host::FlashLayout::dual_bank(1024, 64, 1, 0xFF));
    ASSERT_EQ(flash.write(FlashArea::Bank0, 0, file.data(), file.size()), Status::Ok) << vec["file"].str;
    uint8_t window[kPrefixWindowLen];
    BundleInfo whole, windowed;
    const Status a = parse_prefix(file.data(), file.size(), whole);
    PrefixSource src(flash, FlashArea::Bank0, window, sizeof window);
    const Status b = parse_prefix(src, file.size(), windowed);
    EXPECT_EQ(status_name(b), status_name(a)) << vec["file"].str;
    if (a == Status::Ok && b == Status::Ok) {
      EXPECT_STREQ(windowed.manifest.bundle_id, whole.manifest.bundle_id);
      EXPECT_EQ(windowed.manifest.security_counter, whole.manifest.security_counter);
      ASSERT_EQ(windowed.component_count, whole.component_count);
      for (uint8_t i = 0; i < whole.component_count; ++i) {
        EXPECT_EQ(windowed.components[i].offset, whole.components[i].offset);
        EXPECT_EQ(windowed.components[i].length, whole.components[i].length);
        EXPECT_EQ(0, std::memcmp(windowed.components[i].sha256, whole.components[i].sha256, 32));
      }
      EXPECT_EQ(0, std::memcmp(windowed.signature.signature, whole.signature.signature, kMaxSignatureLen));
    }
    ++checked;
  }
  EXPECT_GE(checked, 30u);
  std::printf("[vectors] %zu prefixes parsed from flash through a %u-byte window: same verdicts\n", checked,
              kPrefixWindowLen);
}
