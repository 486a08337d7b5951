// Flash port for the ESP32-S3 on ESP-IDF's partition API (esp_partition_read/write/erase_range): the five
// tinyfleet areas are the data partitions labelled tf_bank0, tf_bank1, tf_meta0, tf_meta1, tf_scratch
// (partitions.csv). Erase unit: the partition's erase_size (4 KiB sectors). Writes: 16-byte granularity,
// which is also what flash encryption needs. SPI NOR can clear bits without an erase; the core's rule
// ("write only erased bytes") is enforced here by reading the target range first.
#pragma once

#include "esp_partition.h"
#include "tinyfleet/ports.h"

namespace tinyfleet::esp32s3 {

class Esp32s3Flash final : public Flash {
 public:
  // Finds the partitions; false if one is missing (wrong partition table).
  bool open();

  FlashGeometry geometry(FlashArea area) const override;
  Status read(FlashArea area, uint32_t offset, uint8_t* dst, size_t len) override;
  Status write(FlashArea area, uint32_t offset, const uint8_t* src, size_t len) override;
  Status erase(FlashArea area, uint32_t offset, size_t len) override;

  const esp_partition_t* partition(FlashArea area) const;

 private:
  const esp_partition_t* parts_[kFlashAreaCount] = {};
};

}  // namespace tinyfleet::esp32s3
