// Stand-in for ESP-IDF v5's esp_flash_partitions.h (bootloader_support), which esp_ota_ops.h includes:
// declares only what device/ports/esp32s3 uses (the otadata image states), with the names and values of
// ESP-IDF v5's documentation and headers, so that the port's use of tinyfleet's API and its C++ are compiled
// on the host (device/targets/host-tests/CMakeLists.txt). It says nothing about the real ESP-IDF: nothing
// here is built or run against it.
#pragma once

#include <stdint.h>

// ESP-IDF's enum also has NEW (0), VALID (2), INVALID (3), ABORTED (4) and UNDEFINED (0xFFFFFFFF), the last
// of which makes it 32 bits wide; UNDEFINED is kept for that.
typedef enum {
  ESP_OTA_IMG_PENDING_VERIFY = 0x1U,
  ESP_OTA_IMG_UNDEFINED = 0xFFFFFFFFU,
} esp_ota_img_states_t;
