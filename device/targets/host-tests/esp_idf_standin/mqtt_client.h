// Stand-in for esp-mqtt's mqtt_client.h as ESP-IDF v5 ships it: declares only what device/ports/esp32s3
// uses, with the names, types and signatures of ESP-IDF v5's documentation and esp-mqtt's header (the
// nested members of esp_mqtt_client_config_t, the fields of esp_mqtt_event_t, the event ids), so that the
// port's use of tinyfleet's API and its C++ are compiled on the host (device/targets/host-tests/CMakeLists.txt).
// It says nothing about the real ESP-IDF: nothing here is built or run against it. Members and enumerators
// the port does not use are left out; esp_mqtt_client_config_t keeps ESP-IDF's nesting.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"
#include "esp_event.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct esp_mqtt_client* esp_mqtt_client_handle_t;

typedef enum esp_mqtt_event_id_t {
  MQTT_EVENT_ANY = -1,
  MQTT_EVENT_ERROR = 0,
  MQTT_EVENT_CONNECTED,
  MQTT_EVENT_DISCONNECTED,
  MQTT_EVENT_SUBSCRIBED,
  MQTT_EVENT_UNSUBSCRIBED,
  MQTT_EVENT_PUBLISHED,
  MQTT_EVENT_DATA,
  MQTT_EVENT_BEFORE_CONNECT,
} esp_mqtt_event_id_t;

typedef enum esp_mqtt_protocol_ver_t {
  MQTT_PROTOCOL_UNDEFINED = 0,
  MQTT_PROTOCOL_V_3_1,
  MQTT_PROTOCOL_V_3_1_1,
  MQTT_PROTOCOL_V_5,
} esp_mqtt_protocol_ver_t;

typedef struct esp_mqtt_event_t {
  esp_mqtt_event_id_t event_id;
  esp_mqtt_client_handle_t client;
  char* data;               // this event's part of the payload
  int data_len;             // its length
  int total_data_len;       // the whole payload's length (a long one comes in several MQTT_EVENT_DATA)
  int current_data_offset;  // where this part starts in the payload
  char* topic;              // the topic (first part only)
  int topic_len;
  int msg_id;
  int session_present;      // CONNACK's session present flag (MQTT_EVENT_CONNECTED)
} esp_mqtt_event_t;

typedef struct esp_mqtt_client_config_t {
  struct broker_t {
    struct address_t {
      const char* uri;
    } address;
    struct verification_t {
      const char* certificate;  // PEM (NUL-terminated) or DER with certificate_len
    } verification;
  } broker;
  struct credentials_t {
    const char* username;
    const char* client_id;
    struct authentication_t {
      const char* password;
    } authentication;
  } credentials;
  struct session_t {
    struct last_will_t {
      const char* topic;
      const char* msg;
      int msg_len;
      int qos;
      int retain;
    } last_will;
    bool disable_clean_session;  // MQTT v5: Clean Start = !disable_clean_session
    esp_mqtt_protocol_ver_t protocol_ver;
  } session;
  struct task_t {
    int priority;
    int stack_size;
  } task;
  struct buffer_t {
    int size;
  } buffer;
} esp_mqtt_client_config_t;

esp_mqtt_client_handle_t esp_mqtt_client_init(const esp_mqtt_client_config_t* config);
esp_err_t esp_mqtt_client_start(esp_mqtt_client_handle_t client);
esp_err_t esp_mqtt_set_config(esp_mqtt_client_handle_t client, const esp_mqtt_client_config_t* config);
esp_err_t esp_mqtt_client_register_event(esp_mqtt_client_handle_t client, esp_mqtt_event_id_t event,
                                         esp_event_handler_t event_handler, void* event_handler_arg);

// In C++ esp-mqtt maps esp_mqtt_client_subscribe to the single-topic form (in C, a _Generic selection);
// earlier v5 releases declared esp_mqtt_client_subscribe itself with this signature.
#ifdef __cplusplus
#define esp_mqtt_client_subscribe esp_mqtt_client_subscribe_single
#endif
int esp_mqtt_client_subscribe_single(esp_mqtt_client_handle_t client, const char* topic, int qos);
int esp_mqtt_client_unsubscribe(esp_mqtt_client_handle_t client, const char* topic);
int esp_mqtt_client_publish(esp_mqtt_client_handle_t client, const char* topic, const char* data, int len, int qos,
                            int retain);

#ifdef __cplusplus
}
#endif
