// Stand-in for ESP-IDF v5's esp_timer.h: declares only what device/ports/esp32s3 uses, with the names and
// signatures of ESP-IDF v5's documentation and headers, so that the port's use of tinyfleet's API and its
// C++ are compiled on the host (device/targets/host-tests/CMakeLists.txt). It says nothing about the real
// ESP-IDF: nothing here is built or run against it.
#pragma once

#include <stdint.h>

#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

// Microseconds since the timer was initialised (boot).
int64_t esp_timer_get_time(void);

#ifdef __cplusplus
}
#endif
