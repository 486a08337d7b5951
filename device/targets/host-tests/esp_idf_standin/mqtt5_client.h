// Stand-in for esp-mqtt's mqtt5_client.h (ESP-IDF v5, CONFIG_MQTT_PROTOCOL_5): declares only what
// device/ports/esp32s3 uses, with esp-mqtt's names, types and signatures (mqtt_client.h says what a stand-in
// is and is not). Members the port does not use are left out.
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "esp_err.h"
#include "mqtt_client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct esp_mqtt5_connection_property_config {
  uint32_t session_expiry_interval;  // CONNECT's Session Expiry Interval, seconds
} esp_mqtt5_connection_property_config_t;

typedef struct esp_mqtt5_subscribe_property_config {
  uint8_t retain_handle;  // the next SUBSCRIBE's Retain Handling (0, 1 or 2)
} esp_mqtt5_subscribe_property_config_t;

esp_err_t esp_mqtt5_client_set_connect_property(esp_mqtt_client_handle_t client,
                                                const esp_mqtt5_connection_property_config_t* connect_property);
esp_err_t esp_mqtt5_client_set_subscribe_property(esp_mqtt_client_handle_t client,
                                                  const esp_mqtt5_subscribe_property_config_t* property);

#ifdef __cplusplus
}
#endif
