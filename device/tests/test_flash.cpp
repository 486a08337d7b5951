// The host NOR flash emulator: NOR rules, geometry, and each fault it injects.
#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "flash_emulator.h"

using namespace tinyfleet;
using host::CutMode;
using host::FlashEmulator;
using host::FlashLayout;

class FlashRules : public ::testing::TestWithParam<uint8_t> {};

TEST_P(FlashRules, StartsErasedAndRefusesWritesToProgrammedBytes) {
  const uint8_t e = GetParam();
  FlashEmulator f(FlashLayout::dual_bank(256, 4, 4, e));
  EXPECT_EQ(f.geometry(FlashArea::Bank0).size, 1024u);
  EXPECT_EQ(f.geometry(FlashArea::Bank0).erased_value, e);
  std::vector<uint8_t> r(8);
  ASSERT_EQ(f.read(FlashArea::Bank1, 100, r.data(), 8), Status::Ok);
  for (uint8_t b : r) EXPECT_EQ(b, e);
  const uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_EQ(f.write(FlashArea::Bank1, 100, data, 8), Status::Ok);
  EXPECT_EQ(f.write(FlashArea::Bank1, 100, data, 4), Status::FlashNotErased);
  // Even rewriting the erased value over programmed bytes is refused; the content is unchanged.
  const uint8_t erased[4] = {e, e, e, e};
  EXPECT_EQ(f.write(FlashArea::Bank1, 104, erased, 4), Status::FlashNotErased);
  ASSERT_EQ(f.read(FlashArea::Bank1, 100, r.data(), 8), Status::Ok);
  EXPECT_EQ(r, std::vector<uint8_t>(data, data + 8));
  ASSERT_EQ(f.erase(FlashArea::Bank1, 0, 256), Status::Ok);
  ASSERT_EQ(f.read(FlashArea::Bank1, 100, r.data(), 8), Status::Ok);
  for (uint8_t b : r) EXPECT_EQ(b, e);
  EXPECT_EQ(f.write(FlashArea::Bank1, 100, data, 8), Status::Ok);
}

INSTANTIATE_TEST_SUITE_P(ErasedValues, FlashRules, ::testing::Values(uint8_t{0xFF}, uint8_t{0x00}));

TEST(Flash, HonoursWriteGranularityAndSectorAlignment) {
  FlashEmulator f(FlashLayout::dual_bank(512, 2, 8, 0xFF));
  const uint8_t d[16] = {};
  EXPECT_EQ(f.write(FlashArea::Bank0, 4, d, 8), Status::FlashMisaligned);
  EXPECT_EQ(f.write(FlashArea::Bank0, 8, d, 4), Status::FlashMisaligned);
  EXPECT_EQ(f.write(FlashArea::Bank0, 8, d, 16), Status::Ok);
  EXPECT_EQ(f.erase(FlashArea::Bank0, 256, 512), Status::FlashMisaligned);
  EXPECT_EQ(f.erase(FlashArea::Bank0, 0, 100), Status::FlashMisaligned);
  EXPECT_EQ(f.erase(FlashArea::Bank0, 512, 512), Status::Ok);
  EXPECT_EQ(f.write(FlashArea::Bank0, 1024, d, 8), Status::FlashError);  // past the end
  EXPECT_EQ(f.op_count(), 2u);  // refused operations are not counted
}

TEST(Flash, CutBeforeLeavesNothingAndBlocksEverythingUntilReboot) {
  FlashEmulator f(FlashLayout::dual_bank(256, 2, 1, 0xFF));
  const uint8_t d[4] = {1, 2, 3, 4};
  f.cut_power_at(1, CutMode::Before);
  EXPECT_EQ(f.write(FlashArea::Bank0, 0, d, 4), Status::Ok);
  EXPECT_EQ(f.write(FlashArea::Bank0, 4, d, 4), Status::PowerLost);
  uint8_t r[8];
  EXPECT_EQ(f.read(FlashArea::Bank0, 0, r, 8), Status::PowerLost);
  EXPECT_FALSE(f.powered());
  f.power_on();
  ASSERT_EQ(f.read(FlashArea::Bank0, 0, r, 8), Status::Ok);
  EXPECT_EQ(r[3], 4);
  EXPECT_EQ(r[4], 0xFF);
}

TEST(Flash, TornWriteLandsAPrefixAndAHalfProgrammedByte) {
  for (uint8_t e : {uint8_t{0xFF}, uint8_t{0x00}}) {
    FlashEmulator f(FlashLayout::dual_bank(256, 2, 1, e));
    const uint8_t d[8] = {0x11, 0x22, 0x33, 0x44, 0x5A, 0x66, 0x77, 0x88};
    f.cut_power_at(0, CutMode::Torn);
    EXPECT_EQ(f.write(FlashArea::Bank0, 0, d, 8), Status::PowerLost);
    f.power_on();
    uint8_t r[8];
    ASSERT_EQ(f.read(FlashArea::Bank0, 0, r, 8), Status::Ok);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r[i], d[i]);
    EXPECT_NE(r[4], d[4]);
    EXPECT_NE(r[4], e);
    for (int i = 5; i < 8; ++i) EXPECT_EQ(r[i], e);
    EXPECT_EQ(f.write(FlashArea::Bank0, 0, d, 8), Status::FlashNotErased);
  }
}

TEST(Flash, TornEraseErasesHalfAndAfterCompletes) {
  FlashEmulator f(FlashLayout::dual_bank(256, 2, 1, 0xFF));
  std::vector<uint8_t> zeros(256, 0);
  ASSERT_EQ(f.write(FlashArea::Bank0, 0, zeros.data(), 256), Status::Ok);
  f.cut_power_at(0, CutMode::Torn);
  EXPECT_EQ(f.erase(FlashArea::Bank0, 0, 256), Status::PowerLost);
  f.power_on();
  EXPECT_EQ(f.raw(FlashArea::Bank0)[0], 0xFF);
  EXPECT_EQ(f.raw(FlashArea::Bank0)[127], 0xFF);
  EXPECT_EQ(f.raw(FlashArea::Bank0)[128], 0x00);
  f.cut_power_at(0, CutMode::After);
  EXPECT_EQ(f.erase(FlashArea::Bank0, 0, 256), Status::PowerLost);
  f.power_on();
  EXPECT_EQ(f.raw(FlashArea::Bank0)[200], 0xFF);
}

TEST(Flash, BitFlipsAndFilePersistence) {
  FlashEmulator f(FlashLayout::dual_bank(256, 2, 1, 0xFF));
  f.flip_bit(FlashArea::Meta1, 3, 2);
  EXPECT_EQ(f.raw(FlashArea::Meta1)[3], 0xFB);
  const std::string path = ::testing::TempDir() + "tinyfleet_flash.bin";
  ASSERT_TRUE(f.save(path));
  FlashEmulator g(FlashLayout::dual_bank(256, 2, 1, 0xFF));
  ASSERT_TRUE(g.load(path));
  EXPECT_EQ(g.raw(FlashArea::Meta1)[3], 0xFB);
  FlashEmulator other_geometry(FlashLayout::dual_bank(256, 4, 1, 0xFF));
  EXPECT_FALSE(other_geometry.load(path));
  std::remove(path.c_str());
}
