// Boot selection on the Cortex-M4 over RAM-backed flash with STM32L4 write rules (double-word writes):
// trial counting, confirm, revert on a failed health check or exhausted attempts, corrupted images never
// boot.
#include "device_fixture.h"
#include "tests.h"
#include "tinyfleet/boot.h"

using namespace tinyfleet;
using namespace tftarget;

namespace {

constexpr Layout kL4Like = {2048, 4, 8, 0xFF};  // 2 KiB pages, 8-byte programming
constexpr uint32_t kBlock = 512;

// Device provisioned with the old image in bank 0, confirmed.
bool provisioned(ram::RamFlash& flash, BootSelector& boot) {
  return TT_EXPECT_STATUS(write_image(flash, crypto(), 0, old_image(), kBlock, nullptr, nullptr), Status::Ok) &&
         TT_EXPECT_STATUS(boot.provision(0, old_image().desc), Status::Ok);
}

}  // namespace

void test_boot_unprovisioned_has_no_metadata() {
  ram::RamFlash& flash = fresh_flash(kL4Like);
  static BootSelector boot(flash, crypto(), 3);
  BootDecision d;
  TT_EXPECT_STATUS(boot.select(d), Status::NotFound);
}

void test_boot_confirm_after_healthy_trial() {
  ram::RamFlash& flash = fresh_flash(kL4Like);
  static BootSelector boot(flash, crypto(), 3);
  TT_ASSERT(provisioned(flash, boot));
  BootDecision d;
  TT_ASSERT_STATUS(boot.select(d), Status::Ok);
  TT_EXPECT_EQ(d.bank, 0);
  TT_EXPECT(!d.trial);
  InstallStats stats;
  TT_ASSERT_STATUS(install_update(flash, crypto(), boot, new_image(), kBlock, &stats), Status::Ok);
  TT_EXPECT(stats.components_copied >= 1);  // unchanged components come from bank 0
  TT_EXPECT_EQ(stats.components_copied + stats.components_written, new_image().info.component_count);
  TT_ASSERT_STATUS(boot.select(d), Status::Ok);
  TT_EXPECT_EQ(d.bank, 1);
  TT_EXPECT(d.trial);
  TT_EXPECT_EQ(d.record.boot_attempts, 1);
  TT_ASSERT_STATUS(boot.confirm(), Status::Ok);
  TT_ASSERT_STATUS(boot.select(d), Status::Ok);
  TT_EXPECT_EQ(d.bank, 1);
  TT_EXPECT(!d.trial);
  TT_EXPECT(d.record.state == BootState::Confirmed);
  TT_EXPECT_EQ(d.record.security_counter, new_image().info.manifest.security_counter);
  TT_EXPECT(bank_holds(flash, 1, new_image()));
  TT_EXPECT_STATUS(boot.confirm(), Status::InvalidState);
}

void test_boot_failed_health_check_boots_old_image() {
  ram::RamFlash& flash = fresh_flash(kL4Like);
  static BootSelector boot(flash, crypto(), 3);
  TT_ASSERT(provisioned(flash, boot));
  TT_ASSERT_STATUS(install_update(flash, crypto(), boot, new_image(), kBlock), Status::Ok);
  BootDecision d;
  TT_ASSERT_STATUS(boot.select(d), Status::Ok);
  TT_ASSERT(d.trial);
  TT_ASSERT_STATUS(boot.revert(), Status::Ok);
  TT_ASSERT_STATUS(boot.select(d), Status::Ok);
  TT_EXPECT_EQ(d.bank, 0);
  TT_EXPECT(!d.trial);
  TT_EXPECT(d.record.state == BootState::Reverted);
  TT_EXPECT_EQ(d.record.security_counter, old_image().info.manifest.security_counter);
  TT_EXPECT(bank_holds(flash, 0, old_image()));
}

void test_boot_unconfirmed_trial_reverted_after_n_boots() {
  ram::RamFlash& flash = fresh_flash(kL4Like);
  static BootSelector boot(flash, crypto(), 3);
  TT_ASSERT(provisioned(flash, boot));
  TT_ASSERT_STATUS(install_update(flash, crypto(), boot, new_image(), kBlock), Status::Ok);
  BootDecision d;
  for (uint8_t i = 1; i <= 3; ++i) {
    TT_ASSERT_STATUS(boot.select(d), Status::Ok);
    TT_EXPECT(d.trial);
    TT_EXPECT_EQ(d.bank, 1);
    TT_EXPECT_EQ(d.record.boot_attempts, i);
  }
  TT_ASSERT_STATUS(boot.select(d), Status::Ok);
  TT_EXPECT(d.reverted);
  TT_EXPECT(!d.trial);
  TT_EXPECT_EQ(d.bank, 0);
  TT_ASSERT_STATUS(boot.select(d), Status::Ok);
  TT_EXPECT_EQ(d.bank, 0);
  TT_EXPECT(!d.reverted);
  TT_EXPECT(d.record.state == BootState::Reverted);
}

void test_boot_corrupted_images_never_boot() {
  ram::RamFlash& flash = fresh_flash(kL4Like);
  static BootSelector boot(flash, crypto(), 3);
  TT_ASSERT(provisioned(flash, boot));
  TT_ASSERT_STATUS(install_update(flash, crypto(), boot, new_image(), kBlock), Status::Ok);
  const BundleInfo& ni = new_image().info;
  flash.flip_bit(FlashArea::Bank1, ni.components[ni.component_count - 1].offset + 3, 6);
  BootDecision d;
  TT_ASSERT_STATUS(boot.select(d), Status::Ok);
  TT_EXPECT(d.reverted);
  TT_EXPECT_EQ(d.bank, 0);
  flash.flip_bit(FlashArea::Bank0, old_image().info.components[0].offset, 0);
  TT_EXPECT_STATUS(boot.select(d), Status::NoValidImage);
}
