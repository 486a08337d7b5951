// Stand-in for ESP-IDF v5's esp_event.h (esp_event_base.h), which esp-mqtt's mqtt_client.h includes:
// declares only what device/ports/esp32s3 uses (the event base and handler types), with the names and
// signatures of ESP-IDF v5's documentation and headers, so that the port's use of tinyfleet's API and its
// C++ are compiled on the host (device/targets/host-tests/CMakeLists.txt). It says nothing about the real
// ESP-IDF: nothing here is built or run against it.
#pragma once

#include <stdint.h>

#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef const char* esp_event_base_t;
typedef void (*esp_event_handler_t)(void* event_handler_arg, esp_event_base_t event_base, int32_t event_id,
                                    void* event_data);

#ifdef __cplusplus
}
#endif
