// Stand-in for ESP-IDF v5's esp_log.h: declares only what device/ports/esp32s3 uses (ESP_LOGE, ESP_LOGW, ESP_LOGI),
// with the macro shape of ESP-IDF v5's documentation and headers: the macros expand to esp_log_write(), a
// printf-like function checked with the format attribute, so format strings and their arguments are checked
// as on ESP-IDF. So that the port's use of tinyfleet's API and its C++ are compiled on the host
// (device/targets/host-tests/CMakeLists.txt); it says nothing about the real ESP-IDF: nothing here is built
// or run against it. (ESP-IDF's colour and C++20 __VA_OPT__ variants are left out.)
#pragma once

#include <inttypes.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  ESP_LOG_NONE,
  ESP_LOG_ERROR,
  ESP_LOG_WARN,
  ESP_LOG_INFO,
  ESP_LOG_DEBUG,
  ESP_LOG_VERBOSE
} esp_log_level_t;

uint32_t esp_log_timestamp(void);
void esp_log_write(esp_log_level_t level, const char* tag, const char* format, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#ifndef LOG_LOCAL_LEVEL
#define LOG_LOCAL_LEVEL ESP_LOG_INFO  // CONFIG_LOG_MAXIMUM_LEVEL's default
#endif

#define LOG_FORMAT(letter, format) #letter " (%" PRIu32 ") %s: " format "\n"

#define ESP_LOG_LEVEL(level, tag, format, ...)                                                      \
  do {                                                                                              \
    if ((level) == ESP_LOG_ERROR) {                                                                 \
      esp_log_write(ESP_LOG_ERROR, tag, LOG_FORMAT(E, format), esp_log_timestamp(), tag, ##__VA_ARGS__); \
    } else if ((level) == ESP_LOG_WARN) {                                                           \
      esp_log_write(ESP_LOG_WARN, tag, LOG_FORMAT(W, format), esp_log_timestamp(), tag, ##__VA_ARGS__); \
    } else {                                                                                        \
      esp_log_write(ESP_LOG_INFO, tag, LOG_FORMAT(I, format), esp_log_timestamp(), tag, ##__VA_ARGS__); \
    }                                                                                               \
  } while (0)

#define ESP_LOG_LEVEL_LOCAL(level, tag, format, ...)                  \
  do {                                                                \
    if (LOG_LOCAL_LEVEL >= (level)) ESP_LOG_LEVEL(level, tag, format, ##__VA_ARGS__); \
  } while (0)

#define ESP_LOGE(tag, format, ...) ESP_LOG_LEVEL_LOCAL(ESP_LOG_ERROR, tag, format, ##__VA_ARGS__)
#define ESP_LOGW(tag, format, ...) ESP_LOG_LEVEL_LOCAL(ESP_LOG_WARN, tag, format, ##__VA_ARGS__)
#define ESP_LOGI(tag, format, ...) ESP_LOG_LEVEL_LOCAL(ESP_LOG_INFO, tag, format, ##__VA_ARGS__)
