#include "esp32s3_ota.h"

#include "esp_ota_ops.h"
#include "tinyfleet/bytes.h"

namespace tinyfleet::esp32s3 {

bool running_pending_verify() {
  esp_ota_img_states_t state;
  const esp_partition_t* running = esp_ota_get_running_partition();
  return running != nullptr && esp_ota_get_state_partition(running, &state) == ESP_OK &&
         state == ESP_OTA_IMG_PENDING_VERIFY;
}

Status install_firmware(Flash& flash, Crypto& crypto, uint8_t bank, const BundleInfo& info) {
  const int fw = info.find(ComponentType::Firmware);
  if (fw < 0) return Status::MissingComponent;
  const ComponentEntry& c = info.components[fw];
  const esp_partition_t* target = esp_ota_get_next_update_partition(nullptr);
  if (target == nullptr || c.length > target->size) return Status::BundleTooLarge;
  esp_ota_handle_t handle = 0;
  if (esp_ota_begin(target, c.length, &handle) != ESP_OK) return Status::FlashError;

  static uint8_t chunk[1024];
  Sha256Context sha;
  crypto.sha256_start(sha);
  Status s = Status::Ok;
  for (uint32_t off = 0; off < c.length && s == Status::Ok; off += sizeof chunk) {
    const uint32_t n = c.length - off < sizeof chunk ? c.length - off : static_cast<uint32_t>(sizeof chunk);
    s = flash.read(bank_area(bank), c.offset + off, chunk, n);
    if (s != Status::Ok) break;
    crypto.sha256_update(sha, chunk, n);
    if (esp_ota_write(handle, chunk, n) != ESP_OK) s = Status::FlashError;
  }
  uint8_t digest[32];
  crypto.sha256_finish(sha, digest);
  if (s == Status::Ok && !bytes_equal_ct(digest, c.sha256, 32)) s = Status::HashMismatch;
  if (s != Status::Ok) {
    esp_ota_abort(handle);
    return s;
  }
  if (esp_ota_end(handle) != ESP_OK) return Status::FlashError;
  return esp_ota_set_boot_partition(target) == ESP_OK ? Status::Ok : Status::FlashError;
}

Status mark_app_valid() {
  return esp_ota_mark_app_valid_cancel_rollback() == ESP_OK ? Status::Ok : Status::FlashError;
}

Status rollback_app() {
  return esp_ota_mark_app_invalid_rollback_and_reboot() == ESP_OK ? Status::Ok : Status::FlashError;
}

}  // namespace tinyfleet::esp32s3
