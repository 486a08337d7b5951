// The tinyfleet agent on an ESP32-S3 under ESP-IDF 5: boot selection reconciled with otadata, the agent
// placed statically, esp-mqtt as transport, a FreeRTOS task for ticks. The agent is single-threaded: every
// call into it (MQTT events, ticks, battery readings) holds one mutex.
#pragma once

#include <cstddef>
#include <cstdint>

#include "esp_err.h"
#include "tinyfleet/agent.h"

namespace tinyfleet::esp32s3 {

struct Config {
  const char* broker_uri = nullptr;      // e.g. "mqtts://broker.example:8883"
  const char* ca_pem = nullptr;          // broker CA (PEM, NUL-terminated); nullptr for mqtt://
  const char* device_id = nullptr;       // MQTT client id and username (docs/device-protocol.md)
  const char* password = nullptr;        // the device's broker password (server-issued)
  const char* hardware_class = "esp32s3";
  const TrustedKey* keys = nullptr;      // bundle signing keys, key ids filled (compute_key_id)
  size_t key_count = 0;
  Inference* inference = nullptr;        // the application's model runner (TFLite Micro)
  // Called once after boot selection, before the agent starts (and runs a trial's health check): makes
  // `inference` ready for the model of the bank that runs (device/ports/tflm's load_running_model).
  void (*prepare_inference)(Flash& flash, Crypto& crypto, const BootDecision& boot) = nullptr;
  uint32_t tick_ms = 1000;
};

// Runs boot selection (reverting or rolling back as esp32s3_boot_policy.h says), starts the agent, the
// MQTT client and the tick task. Returns ESP_OK, or an error if the partitions or the image are unusable.
esp_err_t start(const Config& config);

// The port's clock (esp_timer since boot, and the wall clock once SNTP has set it): the model runner's
// latency is measured on it.
Clock& clock();

// The application's battery gauge reading (0..100); mains-powered devices never call it (100 % assumed).
void battery(uint8_t pct);

// The inference path, for the application's sensing task once start() returned ESP_OK (each call takes the
// agent's lock; docs/device-agent.md): the calibrated-sample ring's storage (once), raw frames calibrated
// and counted in the telemetry window, the latest calibrated frames for the feature extractor, a model
// output decided by the bundle's thresholds, and the sensor temperature (Q8 degrees C). The agent publishes
// the telemetry window from its tick.
void attach_sample_ring(int16_t* storage, uint32_t samples);
void samples(const int16_t* raw, uint32_t frames);
bool latest_frames(int16_t* out, uint32_t frames);
Decision inference(const uint8_t* output, size_t len, uint32_t latency_us);
void temperature(int16_t temp_q8);

}  // namespace tinyfleet::esp32s3
