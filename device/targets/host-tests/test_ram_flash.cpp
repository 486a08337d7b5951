// The RAM-backed flash port (device/ports/ram): NOR rules and power-cut modes, on the host.
#include <gtest/gtest.h>

#include <cstring>

#include "ram_flash.h"

using namespace tinyfleet;
using tinyfleet::ram::CutMode;
using tinyfleet::ram::RamArea;
using tinyfleet::ram::RamFlash;

namespace {

struct Device {
  uint8_t bank0[1024], bank1[1024], meta0[256], meta1[256];
  RamFlash flash;
  explicit Device(uint8_t erased = 0xFF, uint32_t align = 8)
      : flash(areas(), align, erased) {
    flash.erase_all();
  }
  using Areas = RamArea[kFlashAreaCount];
  const Areas& areas() {
    static Areas areas;
    areas[0] = {bank0, sizeof bank0, 256};
    areas[1] = {bank1, sizeof bank1, 256};
    areas[2] = {meta0, sizeof meta0, 256};
    areas[3] = {meta1, sizeof meta1, 256};
    areas[4] = {nullptr, 0, 0};
    return areas;
  }
};

}  // namespace

TEST(RamFlash, NorRules) {
  Device d;
  uint8_t data[16];
  std::memset(data, 0x5A, sizeof data);
  EXPECT_EQ(d.flash.write(FlashArea::Bank0, 0, data, 16), Status::Ok);
  EXPECT_EQ(d.flash.write(FlashArea::Bank0, 0, data, 8), Status::FlashNotErased);
  EXPECT_EQ(d.flash.write(FlashArea::Bank0, 4, data, 8), Status::FlashMisaligned);
  EXPECT_EQ(d.flash.write(FlashArea::Bank0, 1020, data, 8), Status::FlashError);
  EXPECT_EQ(d.flash.write(FlashArea::Scratch, 0, data, 8), Status::FlashError);  // absent area
  EXPECT_EQ(d.flash.erase(FlashArea::Bank0, 128, 256), Status::FlashMisaligned);
  EXPECT_EQ(d.flash.erase(FlashArea::Bank0, 0, 256), Status::Ok);
  uint8_t back[16];
  ASSERT_EQ(d.flash.read(FlashArea::Bank0, 0, back, 16), Status::Ok);
  for (uint8_t b : back) EXPECT_EQ(b, 0xFF);
  EXPECT_EQ(d.flash.geometry(FlashArea::Scratch).size, 0u);
  EXPECT_EQ(d.flash.geometry(FlashArea::Bank1).write_align, 8u);
}

TEST(RamFlash, PowerCutModes) {
  uint8_t data[16];
  for (int i = 0; i < 16; ++i) data[i] = static_cast<uint8_t>(0x10 + i);
  for (CutMode mode : {CutMode::Before, CutMode::Torn, CutMode::After}) {
    Device d;
    d.flash.cut_power_at(1, mode);
    EXPECT_EQ(d.flash.write(FlashArea::Bank0, 0, data, 16), Status::Ok);     // op 0
    EXPECT_EQ(d.flash.write(FlashArea::Bank1, 0, data, 16), Status::PowerLost);  // op 1: cut
    EXPECT_FALSE(d.flash.powered());
    uint8_t back[16];
    EXPECT_EQ(d.flash.read(FlashArea::Bank1, 0, back, 16), Status::PowerLost);
    d.flash.power_on();
    ASSERT_EQ(d.flash.read(FlashArea::Bank1, 0, back, 16), Status::Ok);
    if (mode == CutMode::Before) {
      for (uint8_t b : back) EXPECT_EQ(b, 0xFF);
    } else if (mode == CutMode::After) {
      EXPECT_EQ(std::memcmp(back, data, 16), 0);
    } else {
      EXPECT_EQ(std::memcmp(back, data, 8), 0);          // first half landed
      EXPECT_EQ(back[8], 0xFF ^ ((0xFF ^ data[8]) & 0x0F));  // half the bits of the next byte
      for (int i = 9; i < 16; ++i) EXPECT_EQ(back[i], 0xFF);
    }
    EXPECT_EQ(d.flash.op_count(), 2u);
  }
  Device d(0x00);
  std::memset(d.bank0, 0x77, sizeof d.bank0);
  d.flash.cut_power_at(0, CutMode::Torn);
  EXPECT_EQ(d.flash.erase(FlashArea::Bank0, 0, 512), Status::PowerLost);
  EXPECT_EQ(d.bank0[0], 0x00);
  EXPECT_EQ(d.bank0[255], 0x00);
  EXPECT_EQ(d.bank0[256], 0x77);  // the erase stopped half way
}
