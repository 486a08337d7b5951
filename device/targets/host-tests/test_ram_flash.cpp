// The RAM-backed flash port (device/ports/ram) on the host.
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

// The NOR rules and power cuts are the NOR model's (device/tests/test_nor_flash.cpp); here, what the RAM
// front end adds: caller arrays as the flash, absent areas, and a factory-fresh erase.
TEST(RamFlash, CallerArraysAreTheFlashAndAbsentAreasRefuseEverything) {
  Device d;
  uint8_t data[16];
  std::memset(data, 0x5A, sizeof data);
  EXPECT_EQ(d.flash.write(FlashArea::Bank0, 0, data, 16), Status::Ok);
  EXPECT_EQ(std::memcmp(d.bank0, data, 16), 0);  // in the caller's array
  EXPECT_EQ(d.bank0[16], 0xFF);
  EXPECT_EQ(d.flash.write(FlashArea::Bank0, 0, data, 8), Status::FlashNotErased);
  EXPECT_EQ(d.flash.write(FlashArea::Bank0, 4, data, 8), Status::FlashMisaligned);
  EXPECT_EQ(d.flash.write(FlashArea::Bank0, 1020, data, 8), Status::FlashError);
  EXPECT_EQ(d.flash.write(FlashArea::Scratch, 0, data, 8), Status::FlashError);  // absent area
  uint8_t back[8];
  EXPECT_EQ(d.flash.read(FlashArea::Scratch, 0, back, 8), Status::FlashError);
  EXPECT_EQ(d.flash.erase(FlashArea::Scratch, 0, 256), Status::FlashError);
  EXPECT_EQ(d.flash.geometry(FlashArea::Scratch).size, 0u);
  EXPECT_EQ(d.flash.geometry(FlashArea::Bank1).write_align, 8u);
  EXPECT_EQ(d.flash.geometry(FlashArea::Meta0).sector_size, 256u);
}

TEST(RamFlash, EraseAllIsFactoryFreshAndATornEraseStopsHalfWay) {
  Device d(0x00);
  std::memset(d.bank0, 0x77, sizeof d.bank0);
  d.flash.cut_power_at(0, CutMode::Torn);
  EXPECT_EQ(d.flash.erase(FlashArea::Bank0, 0, 512), Status::PowerLost);
  EXPECT_EQ(d.bank0[0], 0x00);
  EXPECT_EQ(d.bank0[255], 0x00);
  EXPECT_EQ(d.bank0[256], 0x77);  // the erase stopped half way
  EXPECT_FALSE(d.flash.powered());
  d.flash.cut_power_at(3, CutMode::Before);
  d.flash.erase_all();
  EXPECT_TRUE(d.flash.powered());
  EXPECT_FALSE(d.flash.armed());
  for (uint8_t b : d.bank0) EXPECT_EQ(b, 0x00);
  EXPECT_EQ(d.meta1[255], 0x00);
}
