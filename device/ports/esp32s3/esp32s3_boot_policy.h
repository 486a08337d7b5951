// How the ESP32-S3 port keeps tinyfleet's metadata and ESP-IDF's app rollback (otadata) in step. Pure
// functions, unit-tested on the host (device/targets/host-tests).
//
// On the ESP32-S3 an image bank (tf_bank0 / tf_bank1 data partitions) holds the bundle byte for byte, as on
// every port; the firmware component is then installed into the next OTA app partition (ota_0 / ota_1)
// with esp_ota_ops, because ESP-IDF's bootloader starts apps only from app partitions. With
// CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE the new app boots as ESP_OTA_IMG_PENDING_VERIFY; tinyfleet's trial
// confirms it with esp_ota_mark_app_valid_cancel_rollback() or rolls back with
// esp_ota_mark_app_invalid_rollback_and_reboot().
#pragma once

#include <cstdint>

#include "tinyfleet/metadata.h"

namespace tinyfleet::esp32s3 {

// At app start, after BootSelector::select(): what to do given tinyfleet's decision and otadata's state of
// the running app.
enum class StartAction : uint8_t {
  Run,                  // both agree: run (as a trial if decision.trial)
  RevertMetadata,       // tinyfleet says trial, but ESP-IDF already rolled back to the confirmed app:
                        // BootSelector::revert(), then run the confirmed image
  RollbackApp,          // tinyfleet reverted the trial, but the new app still runs pending verification:
                        // esp_ota_mark_app_invalid_rollback_and_reboot()
};
StartAction on_start(bool decision_trial, bool running_pending_verify);

// When the agent asks for a reboot: what the shell does first, given the stored metadata state and whether
// the running app is pending verification.
enum class RebootAction : uint8_t {
  InstallFirmware,  // a trial was just staged: copy its firmware component into the next OTA app partition,
                    // esp_ota_set_boot_partition(), then esp_restart()
  RollbackApp,      // the running trial was reverted: esp_ota_mark_app_invalid_rollback_and_reboot()
  Restart,          // plain esp_restart()
};
RebootAction on_reboot(BootState stored_state, bool running_pending_verify);

// After an event, while the running app is pending verification: once tinyfleet's metadata says Confirmed
// (the agent confirmed the trial), otadata must say so too (esp_ota_mark_app_valid_cancel_rollback()).
bool should_mark_valid(BootState stored_state, bool running_pending_verify);

}  // namespace tinyfleet::esp32s3
