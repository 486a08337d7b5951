// Stand-in for ESP-IDF v5's esp_partition.h: declares only what device/ports/esp32s3 uses, with the names,
// types and signatures of ESP-IDF v5's documentation and headers (esp_partition_t as ESP-IDF v5 lays it
// out), so that the port's use of tinyfleet's API and its C++ are compiled on the host
// (device/targets/host-tests/CMakeLists.txt). It says nothing about the real ESP-IDF: nothing here is built
// or run against it.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

// The enumerators and members the port uses; ESP-IDF's others are left out.
typedef enum {
  ESP_PARTITION_TYPE_DATA = 0x01,
} esp_partition_type_t;

typedef enum {
  ESP_PARTITION_SUBTYPE_ANY = 0xff,
} esp_partition_subtype_t;

typedef struct {
  uint32_t size;        // bytes
  uint32_t erase_size;  // what an erase must be aligned to
} esp_partition_t;

const esp_partition_t* esp_partition_find_first(esp_partition_type_t type, esp_partition_subtype_t subtype,
                                                const char* label);
esp_err_t esp_partition_read(const esp_partition_t* partition, size_t src_offset, void* dst, size_t size);
esp_err_t esp_partition_write(const esp_partition_t* partition, size_t dst_offset, const void* src, size_t size);
esp_err_t esp_partition_erase_range(const esp_partition_t* partition, size_t offset, size_t size);

#ifdef __cplusplus
}
#endif
