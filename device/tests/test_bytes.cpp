#include <gtest/gtest.h>

#include <cstring>

#include "mbedtls_crypto.h"
#include "tinyfleet/bytes.h"
#include "tinyfleet/status.h"

using namespace tinyfleet;

TEST(Bytes, LittleEndianRoundTrip) {
  uint8_t b[8];
  store_u32le(b, 0x11223344u);
  EXPECT_EQ(b[0], 0x44);
  EXPECT_EQ(load_u32le(b), 0x11223344u);
  store_u64le(b, 0x0102030405060708ull);
  EXPECT_EQ(load_u64le(b), 0x0102030405060708ull);
  store_u16le(b, 0xBEEF);
  EXPECT_EQ(load_u16le(b), 0xBEEF);
}

TEST(Bytes, Crc32MatchesZlib) {
  const char* s = "123456789";  // the standard check value of CRC-32/ISO-HDLC
  EXPECT_EQ(crc32_ieee(reinterpret_cast<const uint8_t*>(s), 9), 0xCBF43926u);
}

TEST(Bytes, StatusNamesAreTheDocNames) {
  EXPECT_STREQ(status_name(Status::HashMismatch), "HashMismatch");
  EXPECT_STREQ(status_name(Status::NeedMoreBytes), "NeedMoreBytes");
  EXPECT_TRUE(is_bundle_verdict(Status::BadMagic));
  EXPECT_FALSE(is_bundle_verdict(Status::NeedMoreBytes));
  EXPECT_FALSE(is_bundle_verdict(Status::FlashError));
}

TEST(HostCrypto, Sha256OfAbc) {
  host::MbedtlsCrypto crypto;
  uint8_t out[32];
  sha256(crypto, reinterpret_cast<const uint8_t*>("abc"), 3, out);
  const uint8_t want[4] = {0xba, 0x78, 0x16, 0xbf};
  EXPECT_EQ(std::memcmp(out, want, 4), 0);
}
