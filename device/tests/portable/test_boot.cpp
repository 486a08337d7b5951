// Boot selection and the update driver over RAM-backed flash with STM32L4 write rules (double-word
// writes): trial counting, confirm, revert on a failed health check or exhausted attempts, corrupted images
// never boot, unchanged components are copied, not downloaded.
#include <new>

#include "device_fixture.h"
#include "tinyfleet/boot.h"
#include "tinytest.h"

using namespace tinyfleet;
using namespace tftest;

namespace {

constexpr Layout kL4Like = {2048, 4, 8, 0xFF};  // 2 KiB pages, 8-byte programming
constexpr uint32_t kBlock = 512;
// The update differs from the old image in its firmware and model (downloaded); its thresholds, calibration
// and health vectors are the old image's (copied).
const Image& update_image() { return other_image(); }
constexpr uint32_t kCopiedComponents = 3;
constexpr uint32_t kDownloadedComponents = 2;

// Device provisioned with the old image in bank 0, confirmed.
bool provisioned(ram::RamFlash& flash, BootSelector& boot) {
  return TT_EXPECT_STATUS(write_image(flash, crypto(), 0, old_image(), kBlock, nullptr, nullptr), Status::Ok) &&
         TT_EXPECT_STATUS(boot.provision(0, old_image().desc), Status::Ok);
}

// Boot selection picks `bank`, on trial or not.
bool boots(BootSelector& boot, uint8_t bank, bool trial, BootDecision& d) {
  return TT_EXPECT_STATUS(boot.select(d), Status::Ok) && TT_EXPECT_EQ(d.bank, bank) && TT_EXPECT(d.trial == trial);
}

BootSelector& fresh_boot(ram::RamFlash& flash) {
  alignas(BootSelector) static uint8_t storage[sizeof(BootSelector)];
  return *new (storage) BootSelector(flash, crypto(), 3);
}

// A device provisioned with the old image, the update installed as its trial.
bool trial_installed(ram::RamFlash*& flash, BootSelector*& boot) {
  flash = &fresh_flash(kL4Like);
  boot = &fresh_boot(*flash);
  return provisioned(*flash, *boot) &&
         TT_EXPECT_STATUS(install_update(*flash, crypto(), *boot, update_image(), kBlock), Status::Ok);
}

}  // namespace

TT_TEST(Boot, UnprovisionedDeviceHasNoMetadata) {
  ram::RamFlash& flash = fresh_flash(kL4Like);
  BootSelector& boot = fresh_boot(flash);
  BootDecision d;
  TT_EXPECT_STATUS(boot.select(d), Status::NotFound);
}

TT_TEST(Boot, UpdateConfirmAfterHealthyTrialBoot) {
  ram::RamFlash& flash = fresh_flash(kL4Like);
  BootSelector& boot = fresh_boot(flash);
  TT_ASSERT(provisioned(flash, boot));
  BootDecision d;
  TT_ASSERT(boots(boot, 0, false, d));
  InstallStats stats;
  TT_ASSERT_STATUS(install_update(flash, crypto(), boot, update_image(), kBlock, &stats), Status::Ok);
  TT_EXPECT_EQ(stats.components_copied, kCopiedComponents);  // unchanged components come from bank 0
  TT_EXPECT_EQ(stats.components_downloaded, kDownloadedComponents);
  TT_EXPECT_EQ(stats.components_copied + stats.components_downloaded, update_image().info.component_count);
  TT_ASSERT(boots(boot, 1, true, d));
  TT_EXPECT_EQ(d.record.boot_attempts, 1);
  TT_ASSERT_STATUS(boot.confirm(), Status::Ok);
  TT_ASSERT(boots(boot, 1, false, d));
  TT_EXPECT(d.record.state == BootState::Confirmed);
  TT_EXPECT_EQ(d.record.security_counter, update_image().info.manifest.security_counter);
  TT_EXPECT(bank_holds(flash, 1, update_image()));
  TT_EXPECT_STATUS(boot.confirm(), Status::InvalidState);  // nothing on trial any more
}

TT_TEST(Boot, FailedHealthCheckBootsTheOldImageNext) {
  ram::RamFlash* flash;
  BootSelector* boot;
  TT_ASSERT(trial_installed(flash, boot));
  BootDecision d;
  TT_ASSERT_STATUS(boot->select(d), Status::Ok);
  TT_ASSERT(d.trial);
  TT_ASSERT_STATUS(boot->revert(), Status::Ok);
  TT_ASSERT(boots(*boot, 0, false, d));
  TT_EXPECT(d.record.state == BootState::Reverted);
  TT_EXPECT_EQ(d.record.security_counter, old_image().info.manifest.security_counter);
  TT_EXPECT(bank_holds(*flash, 0, old_image()));
}

TT_TEST(Boot, TrialThatNeverConfirmsIsRevertedAfterNBoots) {
  ram::RamFlash* flash;
  BootSelector* boot;
  TT_ASSERT(trial_installed(flash, boot));
  BootDecision d;
  for (uint8_t i = 1; i <= 3; ++i) {
    TT_ASSERT(boots(*boot, 1, true, d));
    TT_EXPECT_EQ(d.record.boot_attempts, i);
  }
  TT_ASSERT(boots(*boot, 0, false, d));
  TT_EXPECT(d.reverted);
  TT_ASSERT(boots(*boot, 0, false, d));  // and it stays reverted
  TT_EXPECT(!d.reverted);
  TT_EXPECT(d.record.state == BootState::Reverted);
}

TT_TEST(Boot, CorruptedTrialIsRevertedAndCorruptedConfirmedNeverBoots) {
  ram::RamFlash* flash;
  BootSelector* boot;
  TT_ASSERT(trial_installed(flash, boot));
  const BundleInfo& ni = update_image().info;
  flash->flip_bit(FlashArea::Bank1, ni.components[ni.component_count - 1].offset + 3, 6);
  BootDecision d;
  TT_ASSERT_STATUS(boot->select(d), Status::Ok);
  TT_EXPECT(d.reverted);
  TT_EXPECT_EQ(d.bank, 0);
  flash->flip_bit(FlashArea::Bank0, old_image().info.components[0].offset, 0);
  TT_EXPECT_STATUS(boot->select(d), Status::NoValidImage);
}
