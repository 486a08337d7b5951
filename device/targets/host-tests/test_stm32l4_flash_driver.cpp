// The STM32L476 register-level flash driver (device/ports/stm32/stm32l4_flash.cpp) against a model of the
// flash controller (stm32l4_controller_model.h), and the core's bank writer and boot selection on top of it.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "mbedtls_crypto.h"
#include "stm32l4_boot.h"
#include "stm32l4_controller_model.h"
#include "stm32l4_flash.h"
#include "tinyfleet/bank_writer.h"
#include "tinyfleet/boot.h"

using namespace tinyfleet;
using namespace tinyfleet::stm32l4;

namespace {

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

}  // namespace

TEST(Stm32l4FlashDriver, WritesLandInThePhysicalPageUnderEitherBankMapping) {
  for (bool fb : {false, true}) {
    stm32model::FlashController hw;
    Stm32l4Flash flash(hw);
    hw.set_fb_mode(fb);
    const auto data = pattern(32, fb ? 3 : 5);
    ASSERT_EQ(flash.write(FlashArea::Bank1, 2048 + 16, data.data(), data.size()), Status::Ok);
    EXPECT_EQ(hw.programs, 4u);  // four double words
    for (size_t i = 0; i < data.size(); ++i) EXPECT_EQ(hw.byte(1, kImageFirstPage + 1, 16 + i), data[i]);
    std::vector<uint8_t> back(32);
    ASSERT_EQ(flash.read(FlashArea::Bank1, 2048 + 16, back.data(), back.size()), Status::Ok);
    EXPECT_EQ(back, data);
    EXPECT_TRUE(hw.locked());          // locked again after the operation
    EXPECT_GE(hw.cache_resets, 1u);    // data cache flushed
    EXPECT_EQ(hw.errors_seen, 0u);
  }
}

TEST(Stm32l4FlashDriver, EraseSelectsThePhysicalBankAndPage) {
  stm32model::FlashController hw;
  Stm32l4Flash flash(hw);
  hw.set_fb_mode(true);  // bank 2 mapped at 0x08000000: erase still names physical banks
  ASSERT_EQ(flash.erase(FlashArea::Bank0, 3 * 2048, 2 * 2048), Status::Ok);
  ASSERT_EQ(flash.erase(FlashArea::Meta1, 0, 2048), Status::Ok);
  ASSERT_EQ(flash.erase(FlashArea::Scratch, 2048, 2048), Status::Ok);
  const std::vector<std::pair<uint8_t, uint32_t>> want = {
      {0, kImageFirstPage + 3}, {0, kImageFirstPage + 4}, {1, kMetaPage}, {1, kScratchPage}};
  EXPECT_EQ(hw.erased_pages, want);
  EXPECT_EQ(flash.erase(FlashArea::Bank0, 1024, 2048), Status::FlashMisaligned);
  EXPECT_EQ(hw.erases, 4u);
}

TEST(Stm32l4FlashDriver, ProgrammedDoubleWordsAreRefusedBeforeTheControllerIsTouched) {
  stm32model::FlashController hw;
  Stm32l4Flash flash(hw);
  hw.poke(0, kImageFirstPage, 9, 0x00);  // one programmed byte in the second double word
  const auto data = pattern(16, 1);
  EXPECT_EQ(flash.write(FlashArea::Bank0, 0, data.data(), 16), Status::FlashNotErased);
  EXPECT_EQ(hw.programs, 0u);  // not even the first double word
  EXPECT_EQ(flash.write(FlashArea::Bank0, 4, data.data(), 8), Status::FlashMisaligned);
  EXPECT_EQ(flash.write(FlashArea::Bank0, kImageSize - 8, data.data(), 16), Status::FlashError);
  EXPECT_EQ(hw.programs, 0u);
  EXPECT_EQ(hw.errors_seen, 0u);
}

TEST(Stm32l4FlashDriver, ControllerErrorsAreFlashErrorsAndTheirFlagsAreCleared) {
  stm32model::FlashController hw;
  Stm32l4Flash flash(hw);
  hw.write_protect(0, kImageFirstPage);
  const auto data = pattern(8, 2);
  EXPECT_EQ(flash.erase(FlashArea::Bank0, 0, 2048), Status::FlashError);
  EXPECT_EQ(flash.write(FlashArea::Bank0, 0, data.data(), 8), Status::FlashError);
  EXPECT_EQ(hw.read32(reg::kFlash + 0x10) & reg::SR_ERRORS, 0u);
  EXPECT_TRUE(hw.locked());
  // The next operation on an unprotected page works: no stale flag or PG bit left behind.
  EXPECT_EQ(flash.write(FlashArea::Bank0, 2048, data.data(), 8), Status::Ok);
}

// The core's bank writer and boot selection on the driver: a tests/vectors bundle written page by page,
// provisioned, selected under both bank mappings; a flipped bit in the image makes it unbootable.
TEST(Stm32l4FlashDriver, CoreBootSelectionRunsOnTheDriver) {
  std::ifstream f(std::string(TINYFLEET_VECTORS_DIR) + "/valid-stm32l4.tfb", std::ios::binary);
  ASSERT_TRUE(f);
  std::vector<uint8_t> bundle((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  stm32model::FlashController hw;
  Stm32l4Flash flash(hw);
  host::MbedtlsCrypto crypto;
  static BundleInfo info;
  ASSERT_EQ(parse_prefix(bundle.data(), bundle.size(), info), Status::Ok);
  static BankWriter writer(flash, crypto);
  ASSERT_EQ(writer.begin(0, info, bundle.data()), Status::Ok);
  for (uint8_t i = 0; i < info.component_count; ++i) {
    const ComponentEntry& c = info.components[i];
    for (uint32_t off = 0; off < c.length; off += 2048) {
      const uint32_t n = c.length - off < 2048 ? c.length - off : 2048;
      ASSERT_EQ(writer.write(c.offset + off, bundle.data() + c.offset + off, n), Status::Ok);
    }
  }
  ImageDescriptor desc;
  ASSERT_EQ(writer.finish(desc), Status::Ok);
  static BootSelector boot(flash, crypto);
  ASSERT_EQ(boot.provision(0, desc), Status::Ok);
  for (bool fb : {false, true}) {
    hw.set_fb_mode(fb);
    BootDecision d;
    ASSERT_EQ(boot.select(d), Status::Ok);
    EXPECT_EQ(d.bank, 0);
    EXPECT_FALSE(d.trial);
  }
  const ComponentEntry& fw = info.components[0];
  const uint32_t page = kImageFirstPage + fw.offset / kPageSize;
  hw.poke(0, page, fw.offset % kPageSize, static_cast<uint8_t>(hw.byte(0, page, fw.offset % kPageSize) ^ 0x40));
  BootDecision d;
  EXPECT_EQ(boot.select(d), Status::NoValidImage);
  EXPECT_EQ(hw.errors_seen, 0u);
}

// The bootloader's steps before the jump (stm32l4_boot.h), on the controller model: a trial boot maps its
// bank and only then starts the watchdog; a firmware component that cannot run in place starts nothing.
TEST(Stm32l4Boot, BankMappingAndWatchdogSequence) {
  stm32model::FlashController hw;
  map_bank_at_zero(hw, 1);
  EXPECT_TRUE(hw.fb_mode());
  map_bank_at_zero(hw, 0);
  EXPECT_FALSE(hw.fb_mode());
  IwdgSetting s;
  ASSERT_TRUE(iwdg_setting(8000, 32000, s));
  iwdg_start(hw, s);
  const std::vector<uint32_t> keys = {0xCCCC, 0x5555, 0xAAAA};  // start, register access, reload
  EXPECT_EQ(hw.iwdg_keys, keys);
  EXPECT_EQ(hw.iwdg_pr, 4u);
  EXPECT_EQ(hw.iwdg_rlr, 3999u);
  iwdg_refresh(hw);
  EXPECT_EQ(hw.iwdg_keys.back(), 0xAAAAu);
}

namespace {

// Both banks hold the test vectors' bundle; bank 0 confirmed, bank 1 installed as the trial.
struct TrialBoard {
  stm32model::FlashController hw;
  Stm32l4Flash flash{hw};
  host::MbedtlsCrypto crypto;
  BundleInfo info;
  BankWriter writer{flash, crypto};
  BootSelector boot{flash, crypto, 2};

  void install() {
    std::ifstream f(std::string(TINYFLEET_VECTORS_DIR) + "/valid-stm32l4.tfb", std::ios::binary);
    ASSERT_TRUE(f);
    std::vector<uint8_t> bundle((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    ASSERT_EQ(parse_prefix(bundle.data(), bundle.size(), info), Status::Ok);
    ImageDescriptor desc;
    for (uint8_t bank : {0, 1}) {
      ASSERT_EQ(writer.begin(bank, info, bundle.data()), Status::Ok);
      for (uint8_t i = 0; i < info.component_count; ++i) {
        const ComponentEntry& c = info.components[i];
        ASSERT_EQ(writer.write(c.offset, bundle.data() + c.offset, c.length), Status::Ok);
      }
      ASSERT_EQ(writer.finish(desc), Status::Ok);
    }
    ASSERT_EQ(boot.provision(0, desc), Status::Ok);
    ASSERT_EQ(boot.install_trial(1, desc), Status::Ok);
  }
};

}  // namespace

TEST(Stm32l4Boot, TrialWhoseFirmwareCannotRunInPlaceStartsNothing) {
  static TrialBoard b;
  b.install();
  auto& hw = b.hw;
  auto& boot = b.boot;
  uint32_t vector_table = 1;
  // tests/vectors' firmware is not a program (offset 848, not 512-aligned): refused before the watchdog.
  EXPECT_EQ(prepare_boot(boot, BootConfig{}, hw, vector_table), Status::InvalidArgument);
  EXPECT_EQ(vector_table, 0u);
  EXPECT_FALSE(hw.fb_mode());      // mapping back to bank 1
  EXPECT_TRUE(hw.iwdg_keys.empty());  // no watchdog started
  MetadataRecord rec;
  ASSERT_EQ(boot.store().load(rec), Status::Ok);
  EXPECT_EQ(rec.boot_attempts, 1);  // the attempt was counted before anything ran
  MetadataStore store(b.flash);
  BootDecision none;
  EXPECT_EQ(take_boot_decision(hw, store, none), Status::NotFound);  // and no decision handed over
}


TEST(Stm32l4Boot, TheFirmwareTakesTheBootloadersDecisionOnce) {
  static TrialBoard b;
  b.install();
  BootDecision chosen;
  ASSERT_EQ(b.boot.select(chosen), Status::Ok);  // what the bootloader decided: the trial, attempt 1
  ASSERT_TRUE(chosen.trial);
  write_boot_handoff(b.hw, chosen);

  MetadataStore store(b.flash);
  BootDecision got;
  ASSERT_EQ(take_boot_decision(b.hw, store, got), Status::Ok);
  EXPECT_EQ(got.bank, 1);
  EXPECT_TRUE(got.trial);
  EXPECT_FALSE(got.reverted);
  EXPECT_EQ(got.record.seq, chosen.record.seq);
  EXPECT_EQ(got.record.boot_attempts, 1);  // counted once, by the bootloader
  EXPECT_EQ(take_boot_decision(b.hw, store, got), Status::NotFound);  // consumed

  // The trial runs out of attempts: the bootloader reverts it and says so.
  ASSERT_EQ(b.boot.select(chosen), Status::Ok);
  ASSERT_EQ(b.boot.select(chosen), Status::Ok);
  ASSERT_TRUE(chosen.reverted);
  write_boot_handoff(b.hw, chosen);
  ASSERT_EQ(take_boot_decision(b.hw, store, got), Status::Ok);
  EXPECT_EQ(got.bank, 0);
  EXPECT_FALSE(got.trial);
  EXPECT_TRUE(got.reverted);
}

TEST(Stm32l4Boot, ADamagedOrStaleHandoffIsNoDecision) {
  static TrialBoard b;
  b.install();
  MetadataStore store(b.flash);
  BootDecision chosen, got;
  EXPECT_EQ(take_boot_decision(b.hw, store, got), Status::NotFound);  // cold SRAM: nothing written

  ASSERT_EQ(b.boot.select(chosen), Status::Ok);
  write_boot_handoff(b.hw, chosen);
  b.hw.poke_sram(kBootHandoffAddr + 4, b.hw.read32(kBootHandoffAddr + 4) ^ 1u);  // bank bit flipped
  EXPECT_EQ(take_boot_decision(b.hw, store, got), Status::NotFound);

  write_boot_handoff(b.hw, chosen);
  ASSERT_EQ(b.boot.select(chosen), Status::Ok);  // the metadata moved on after the handoff was written
  EXPECT_EQ(take_boot_decision(b.hw, store, got), Status::NotFound);
}
