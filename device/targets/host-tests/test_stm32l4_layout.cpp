// STM32L476 flash layout and programming rules (device/ports/stm32/stm32l4_layout.h), on the host.
#include <gtest/gtest.h>

#include <set>
#include <utility>

#include "stm32l4_layout.h"

using namespace tinyfleet;
using namespace tinyfleet::stm32l4;

namespace {
constexpr FlashArea kAreas[] = {FlashArea::Bank0, FlashArea::Bank1, FlashArea::Meta0, FlashArea::Meta1,
                                FlashArea::Scratch};
}

TEST(Stm32l4Layout, GeometryIsTwoKiBPagesDoubleWordWritesErasedFF) {
  for (FlashArea a : kAreas) {
    FlashGeometry g = area_geometry(a);
    EXPECT_EQ(g.sector_size, 2048u);
    EXPECT_EQ(g.write_align, 8u);
    EXPECT_EQ(g.erased_value, 0xFF);
    EXPECT_EQ(g.size % g.sector_size, 0u);
  }
  EXPECT_EQ(area_geometry(FlashArea::Bank0).size, 238u * 2048u);
  EXPECT_EQ(area_geometry(FlashArea::Bank1).size, 238u * 2048u);
  EXPECT_EQ(area_geometry(FlashArea::Meta0).size, 2048u);
  EXPECT_EQ(area_geometry(FlashArea::Scratch).size, 4096u);
  EXPECT_EQ(area_geometry(static_cast<FlashArea>(9)).size, 0u);
}

// Every page of both banks belongs to exactly one of: the bootloader (pages 0..15) or one area page.
TEST(Stm32l4Layout, AreasCoverEveryNonBootloaderPageExactlyOnce) {
  std::set<std::pair<int, int>> seen;
  for (FlashArea a : kAreas) {
    const uint32_t size = area_geometry(a).size;
    for (uint32_t off = 0; off < size; off += kPageSize) {
      Location at;
      ASSERT_TRUE(locate(a, off, at));
      EXPECT_EQ(at.page_offset, 0u);
      EXPECT_GE(at.page, kBootPages) << "an area overlaps the bootloader";
      EXPECT_LT(at.page, kPagesPerBank);
      EXPECT_TRUE(seen.insert({at.bank, at.page}).second) << "page used twice: bank " << int(at.bank) << " page "
                                                          << at.page;
    }
  }
  EXPECT_EQ(seen.size(), 2u * (kPagesPerBank - kBootPages));
}

TEST(Stm32l4Layout, ImageBanksAreTheTwoPhysicalBanksAndMetadataCopiesAreInDifferentBanks) {
  Location a, b;
  ASSERT_TRUE(locate(FlashArea::Bank0, 0, a));
  ASSERT_TRUE(locate(FlashArea::Bank1, 0, b));
  EXPECT_EQ(a.bank, 0);
  EXPECT_EQ(b.bank, 1);
  EXPECT_EQ(a.page, kImageFirstPage);
  ASSERT_TRUE(locate(FlashArea::Meta0, 0, a));
  ASSERT_TRUE(locate(FlashArea::Meta1, 0, b));
  EXPECT_NE(a.bank, b.bank);
  // The two halves of the scratch area (two progress-record copies) are in different banks too.
  ASSERT_TRUE(locate(FlashArea::Scratch, 0, a));
  ASSERT_TRUE(locate(FlashArea::Scratch, 2048, b));
  EXPECT_NE(a.bank, b.bank);
  EXPECT_EQ(a.contiguous, 2048u);  // a read across the halves is split at the page end
}

TEST(Stm32l4Layout, LocateMidPageAndBounds) {
  Location at;
  ASSERT_TRUE(locate(FlashArea::Bank1, 5 * 2048 + 100, at));
  EXPECT_EQ(at.bank, 1);
  EXPECT_EQ(at.page, kImageFirstPage + 5);
  EXPECT_EQ(at.page_offset, 100u);
  EXPECT_EQ(at.contiguous, kImageSize - (5 * 2048 + 100));
  const uint32_t last = kImageSize - 1;
  ASSERT_TRUE(locate(FlashArea::Bank0, last, at));
  EXPECT_EQ(at.page, kPagesPerBank - 1);
  EXPECT_EQ(at.contiguous, 1u);
  EXPECT_FALSE(locate(FlashArea::Bank0, kImageSize, at));
  EXPECT_FALSE(locate(FlashArea::Meta0, 2048, at));
  ASSERT_TRUE(locate(FlashArea::Meta1, 2047, at));
  EXPECT_EQ(at.contiguous, 1u);
}

TEST(Stm32l4Layout, AddressesFollowTheBankMapping) {
  // FB_MODE 0: bank 1 (index 0) at 0x08000000, bank 2 at 0x08080000; FB_MODE 1 swaps them.
  EXPECT_EQ(address_of(0, 0, 0, false), 0x08000000u);
  EXPECT_EQ(address_of(1, 0, 0, false), 0x08080000u);
  EXPECT_EQ(address_of(0, 0, 0, true), 0x08080000u);
  EXPECT_EQ(address_of(1, 0, 0, true), 0x08000000u);
  EXPECT_EQ(address_of(1, 255, 2047, false), 0x080FFFFFu);
  EXPECT_EQ(address_of(0, kImageFirstPage, 16, false), 0x08000000u + 18 * 2048 + 16);
  EXPECT_FALSE(fb_mode_for(0));
  EXPECT_TRUE(fb_mode_for(1));
  // Whichever bank is selected, after mapping it its image starts at the same CPU address.
  for (uint8_t bank : {0, 1})
    EXPECT_EQ(address_of(bank, kImageFirstPage, 0, fb_mode_for(bank)), 0x08000000u + kImageFirstPage * kPageSize);
}

TEST(Stm32l4Layout, WritesAreDoubleWordsInsideTheArea) {
  EXPECT_EQ(check_write(FlashArea::Bank0, 0, 8), Status::Ok);
  EXPECT_EQ(check_write(FlashArea::Bank0, 8, 4096), Status::Ok);
  EXPECT_EQ(check_write(FlashArea::Bank0, 4, 8), Status::FlashMisaligned);
  EXPECT_EQ(check_write(FlashArea::Bank0, 8, 12), Status::FlashMisaligned);
  EXPECT_EQ(check_write(FlashArea::Bank0, 1, 1), Status::FlashMisaligned);
  EXPECT_EQ(check_write(FlashArea::Bank0, kImageSize - 8, 8), Status::Ok);
  EXPECT_EQ(check_write(FlashArea::Bank0, kImageSize - 8, 16), Status::FlashError);
  EXPECT_EQ(check_write(FlashArea::Meta0, 2048, 8), Status::FlashError);
  EXPECT_EQ(check_write(FlashArea::Bank0, 0xFFFFFFF8u, 16), Status::FlashError);  // no wrap-around
  EXPECT_EQ(check_write(FlashArea::Bank0, 0, 0), Status::Ok);
}

TEST(Stm32l4Layout, ErasesAreWholePages) {
  EXPECT_EQ(check_erase(FlashArea::Bank1, 0, 2048), Status::Ok);
  EXPECT_EQ(check_erase(FlashArea::Bank1, 2048, 4 * 2048), Status::Ok);
  EXPECT_EQ(check_erase(FlashArea::Bank1, 1024, 2048), Status::FlashMisaligned);
  EXPECT_EQ(check_erase(FlashArea::Bank1, 0, 1024), Status::FlashMisaligned);
  EXPECT_EQ(check_erase(FlashArea::Bank1, 0, kImageSize), Status::Ok);
  EXPECT_EQ(check_erase(FlashArea::Bank1, 2048, kImageSize), Status::FlashError);
}

TEST(Stm32l4Layout, DoubleWordErasedAndSplit) {
  uint8_t dw[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  EXPECT_TRUE(double_word_erased(dw));
  for (int i = 0; i < 8; ++i) {
    dw[i] = 0xFE;  // one programmed bit anywhere in the double word
    EXPECT_FALSE(double_word_erased(dw)) << i;
    dw[i] = 0xFF;
  }
  const uint8_t data[8] = {0x01, 0x02, 0x03, 0x04, 0xA5, 0xB6, 0xC7, 0xD8};
  uint32_t lo = 0, hi = 0;
  double_word_split(data, lo, hi);
  EXPECT_EQ(lo, 0x04030201u);
  EXPECT_EQ(hi, 0xD8C7B6A5u);
}

TEST(Stm32l4Layout, WatchdogSettingReachesTheTimeoutWithTheSmallestDivider) {
  IwdgSetting s;
  ASSERT_TRUE(iwdg_setting(100, 32000, s));  // 3200 LSI ticks: divider 4 -> 800 counts
  EXPECT_EQ(s.pr, 0);
  EXPECT_EQ(s.rlr, 799);
  EXPECT_EQ(s.timeout_ms, 100u);
  ASSERT_TRUE(iwdg_setting(8000, 32000, s));  // 256000 ticks: divider 64 -> 4000 counts
  EXPECT_EQ(s.pr, 4);
  EXPECT_EQ(s.rlr, 3999);
  EXPECT_EQ(s.timeout_ms, 8000u);
  ASSERT_TRUE(iwdg_setting(32768, 32000, s));  // the longest: divider 256, 4096 counts
  EXPECT_EQ(s.pr, 6);
  EXPECT_EQ(s.rlr, 4095);
  EXPECT_FALSE(iwdg_setting(32769, 32000, s));
  EXPECT_FALSE(iwdg_setting(0, 32000, s));
  ASSERT_TRUE(iwdg_setting(1, 32000, s));
  EXPECT_EQ(s.pr, 0);
  EXPECT_EQ(s.rlr, 7);  // 8 counts of 4 ticks = 1 ms
  // Never shorter than asked, for any timeout the watchdog can count.
  for (uint32_t ms = 1; ms <= 32768; ms += 97) {
    ASSERT_TRUE(iwdg_setting(ms, 32000, s)) << ms;
    EXPECT_GE(s.timeout_ms, ms);
    EXPECT_LE(s.rlr, 4095);
    EXPECT_LE(s.pr, 6);
  }
}

TEST(Stm32l4Layout, FirmwareVectorTableChecks) {
  const uint32_t base = 0x08000000u + kImageFirstPage * kPageSize;
  EXPECT_EQ(firmware_vector_table(512, 4096, 0x20018000u, base + 512 + 0x101), base + 512);
  EXPECT_EQ(firmware_vector_table(528, 4096, 0x20018000u, base + 528 + 0x101), 0u);      // VTOR alignment
  EXPECT_EQ(firmware_vector_table(512, 4096, 0x10008000u, base + 512 + 0x101), 0u);      // SP not in SRAM1
  EXPECT_EQ(firmware_vector_table(512, 4096, 0x20018004u, base + 512 + 0x101), 0u);      // SP misaligned
  EXPECT_EQ(firmware_vector_table(512, 4096, 0x20018000u, base + 512 + 0x100), 0u);      // not Thumb
  EXPECT_EQ(firmware_vector_table(512, 4096, 0x20018000u, base + 512 + 4096 + 1), 0u);   // outside the component
  EXPECT_EQ(firmware_vector_table(512, 4, 0x20018000u, base + 512 + 1), 0u);             // too short
  EXPECT_EQ(firmware_vector_table(kImageSize, 4096, 0x20018000u, base + 1), 0u);         // past the bank
}
