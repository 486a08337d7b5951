// ESP32-S3 port: tinyfleet's metadata and ESP-IDF's otadata kept in step (device/ports/esp32s3), on the host.
#include <gtest/gtest.h>

#include "esp32s3_boot_policy.h"

using namespace tinyfleet;
using namespace tinyfleet::esp32s3;

TEST(Esp32s3BootPolicy, AtStart) {
  EXPECT_EQ(on_start(false, false), StartAction::Run);            // confirmed image, valid app
  EXPECT_EQ(on_start(true, true), StartAction::Run);              // trial in both: health check follows
  EXPECT_EQ(on_start(true, false), StartAction::RevertMetadata);  // IDF's bootloader already rolled back
  EXPECT_EQ(on_start(false, true), StartAction::RollbackApp);     // tinyfleet reverted: otadata must follow
}

TEST(Esp32s3BootPolicy, OnRebootRequest) {
  // A trial was staged while a valid app runs: install its firmware into the next OTA slot first.
  EXPECT_EQ(on_reboot(BootState::Trial, false), RebootAction::InstallFirmware);
  // The running trial failed its health check and the metadata was reverted: roll the app back.
  EXPECT_EQ(on_reboot(BootState::Reverted, true), RebootAction::RollbackApp);
  EXPECT_EQ(on_reboot(BootState::Confirmed, false), RebootAction::Restart);
  EXPECT_EQ(on_reboot(BootState::Reverted, false), RebootAction::Restart);
  EXPECT_EQ(on_reboot(BootState::Trial, true), RebootAction::Restart);  // a reboot during the trial counts an attempt
}

TEST(Esp32s3BootPolicy, MarkValidOnlyOnceTheMetadataIsConfirmed) {
  EXPECT_TRUE(should_mark_valid(BootState::Confirmed, true));
  EXPECT_FALSE(should_mark_valid(BootState::Trial, true));
  EXPECT_FALSE(should_mark_valid(BootState::Reverted, true));
  EXPECT_FALSE(should_mark_valid(BootState::Confirmed, false));
}
