// The host NOR flash emulator as a front end: its layout, operation log, bit flips and image files. The NOR
// rules and power cuts it applies are the NOR model's, tested in test_nor_flash.cpp.
#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "flash_emulator.h"

using namespace tinyfleet;
using host::CutMode;
using host::FlashEmulator;
using host::FlashLayout;

TEST(Flash, LogsEveryCountedOperation) {
  FlashEmulator f(FlashLayout::dual_bank(256, 2, 4, 0xFF));
  const uint8_t d[8] = {};
  EXPECT_EQ(f.write(FlashArea::Bank0, 2, d, 4), Status::FlashMisaligned);  // refused: not logged
  ASSERT_EQ(f.write(FlashArea::Bank0, 8, d, 8), Status::Ok);
  f.cut_power_at(0, CutMode::Before);
  EXPECT_EQ(f.erase(FlashArea::Meta1, 0, 256), Status::PowerLost);  // cut: logged
  ASSERT_EQ(f.ops().size(), 2u);
  EXPECT_EQ(f.ops()[0].kind, host::FlashOpKind::Write);
  EXPECT_EQ(f.ops()[0].offset, 8u);
  EXPECT_EQ(f.ops()[0].len, 8u);
  EXPECT_EQ(f.ops()[1].kind, host::FlashOpKind::Erase);
  EXPECT_EQ(f.ops()[1].area, FlashArea::Meta1);
  EXPECT_EQ(f.op_count(), 2u);
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
