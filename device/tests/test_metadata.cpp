// Dual-copy metadata: encoding, CRC, newest-copy selection. Every cut of a store, torn at every length, is in
// test_record_tears.cpp.
#include <gtest/gtest.h>

#include <cstring>

#include "flash_emulator.h"
#include "tinyfleet/metadata.h"

using namespace tinyfleet;
using host::FlashEmulator;
using host::FlashLayout;

namespace {
MetadataRecord sample(uint8_t attempts) {
  MetadataRecord r;
  r.state = BootState::Trial;
  r.confirmed_bank = 0;
  r.trial_bank = 1;
  r.boot_attempts = attempts;
  r.security_counter = 7;
  r.images[0].total_len = 1234;
  r.images[1].total_len = 4321;
  r.images[1].security_counter = 9;
  std::memset(r.images[1].prefix_sha256, 0x5C, 32);
  return r;
}
}  // namespace

TEST(Metadata, EncodeDecodeRoundTripAndCrc) {
  MetadataRecord r = sample(2);
  r.seq = 41;
  uint8_t buf[kMetadataRecordLen];
  encode_metadata(r, buf);
  MetadataRecord d;
  ASSERT_EQ(decode_metadata(buf, sizeof buf, d), Status::Ok);
  EXPECT_EQ(d.seq, 41u);
  EXPECT_EQ(d.state, BootState::Trial);
  EXPECT_EQ(d.boot_attempts, 2);
  EXPECT_EQ(d.images[1].total_len, 4321u);
  EXPECT_EQ(d.images[1].prefix_sha256[31], 0x5C);
  for (size_t i = 0; i < kMetadataRecordLen; ++i) {  // every single-bit error is caught
    for (int bit = 0; bit < 8; ++bit) {
      buf[i] ^= static_cast<uint8_t>(1 << bit);
      EXPECT_EQ(decode_metadata(buf, sizeof buf, d), Status::NotFound) << i << ":" << bit;
      buf[i] ^= static_cast<uint8_t>(1 << bit);
    }
  }
}

TEST(Metadata, StoreAlternatesCopiesAndLoadPicksTheNewest) {
  FlashEmulator f(FlashLayout::dual_bank(256, 4, 16, 0x00));
  MetadataStore store(f);
  MetadataRecord out;
  EXPECT_EQ(store.load(out), Status::NotFound);
  for (uint8_t i = 0; i < 5; ++i) {
    MetadataRecord r = sample(i);
    ASSERT_EQ(store.store(r), Status::Ok);
    EXPECT_EQ(r.seq, i + 1u);
    ASSERT_EQ(store.load(out), Status::Ok);
    EXPECT_EQ(out.boot_attempts, i);
    EXPECT_EQ(out.seq, i + 1u);
  }
  // A bit flip in the newest copy: the previous one is used.
  f.flip_bit(FlashArea::Meta0, 20, 0);  // seq 5 went to Meta0 (1: Meta0, 2: Meta1, ...)
  ASSERT_EQ(store.load(out), Status::Ok);
  EXPECT_EQ(out.seq, 4u);
}
