#include "esp32s3_flash.h"

namespace tinyfleet::esp32s3 {
namespace {

constexpr uint32_t kWriteAlign = 16;
const char* const kLabels[kFlashAreaCount] = {"tf_bank0", "tf_bank1", "tf_meta0", "tf_meta1", "tf_scratch"};

bool in_bounds(const esp_partition_t* p, uint32_t offset, size_t len) {
  return p != nullptr && offset <= p->size && len <= p->size - offset;
}

}  // namespace

bool Esp32s3Flash::open() {
  for (uint8_t i = 0; i < kFlashAreaCount; ++i) {
    parts_[i] = esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY, kLabels[i]);
    if (parts_[i] == nullptr) return false;
  }
  return true;
}

const esp_partition_t* Esp32s3Flash::partition(FlashArea area) const {
  const auto i = static_cast<uint8_t>(area);
  return i < kFlashAreaCount ? parts_[i] : nullptr;
}

FlashGeometry Esp32s3Flash::geometry(FlashArea area) const {
  FlashGeometry g;
  const esp_partition_t* p = partition(area);
  if (p == nullptr) return g;
  g.sector_size = p->erase_size;
  g.size = p->size / p->erase_size * p->erase_size;
  g.write_align = kWriteAlign;
  g.erased_value = 0xFF;
  return g;
}

Status Esp32s3Flash::read(FlashArea area, uint32_t offset, uint8_t* dst, size_t len) {
  const esp_partition_t* p = partition(area);
  if (!in_bounds(p, offset, len)) return Status::FlashError;
  return esp_partition_read(p, offset, dst, len) == ESP_OK ? Status::Ok : Status::FlashError;
}

Status Esp32s3Flash::write(FlashArea area, uint32_t offset, const uint8_t* src, size_t len) {
  const esp_partition_t* p = partition(area);
  if (!in_bounds(p, offset, len)) return Status::FlashError;
  if (offset % kWriteAlign != 0 || len % kWriteAlign != 0) return Status::FlashMisaligned;
  uint8_t chunk[64];
  for (size_t done = 0; done < len; done += sizeof chunk) {
    const size_t n = len - done < sizeof chunk ? len - done : sizeof chunk;
    if (esp_partition_read(p, offset + done, chunk, n) != ESP_OK) return Status::FlashError;
    for (size_t i = 0; i < n; ++i)
      if (chunk[i] != 0xFF) return Status::FlashNotErased;
  }
  return esp_partition_write(p, offset, src, len) == ESP_OK ? Status::Ok : Status::FlashError;
}

Status Esp32s3Flash::erase(FlashArea area, uint32_t offset, size_t len) {
  const esp_partition_t* p = partition(area);
  if (!in_bounds(p, offset, len)) return Status::FlashError;
  if (offset % p->erase_size != 0 || len % p->erase_size != 0) return Status::FlashMisaligned;
  return esp_partition_erase_range(p, offset, len) == ESP_OK ? Status::Ok : Status::FlashError;
}

}  // namespace tinyfleet::esp32s3
