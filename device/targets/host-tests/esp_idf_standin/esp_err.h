// Stand-in for ESP-IDF v5's esp_err.h: declares only what device/ports/esp32s3 uses, with the names, types
// and values of ESP-IDF v5's documentation and headers, so that the port's use of tinyfleet's API and its
// C++ are compiled on the host (device/targets/host-tests/CMakeLists.txt). It says nothing about the real
// ESP-IDF: nothing here is built or run against it.
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int esp_err_t;

#define ESP_OK 0
#define ESP_FAIL -1
#define ESP_ERR_INVALID_ARG 0x102
#define ESP_ERR_NOT_FOUND 0x105

#ifdef __cplusplus
}
#endif
