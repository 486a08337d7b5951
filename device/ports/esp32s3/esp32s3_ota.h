// ESP-IDF app slots (esp_ota_ops) for the ESP32-S3 port: install a staged bundle's firmware component into
// the next OTA app partition, and the otadata side of trial boots (see esp32s3_boot_policy.h).
#pragma once

#include <cstdint>

#include "tinyfleet/bundle_parser.h"
#include "tinyfleet/ports.h"

namespace tinyfleet::esp32s3 {

// True if the running app is ESP_OTA_IMG_PENDING_VERIFY (a trial boot in otadata's terms).
bool running_pending_verify();

// Copy the firmware component of the bundle in `bank` (its table in `info`) into the next OTA app partition,
// hashing it on the way: HashMismatch if the bank does not hold what the table says, FlashError if ESP-IDF
// refuses the image (esp_ota_end validates it) or the boot partition cannot be set.
Status install_firmware(Flash& flash, Crypto& crypto, uint8_t bank, const BundleInfo& info);

// otadata: the running trial app is good / bad. RollbackApp reboots and does not return on success.
Status mark_app_valid();
Status rollback_app();

}  // namespace tinyfleet::esp32s3
