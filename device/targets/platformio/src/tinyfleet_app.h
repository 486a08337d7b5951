// What an ESP32-S3 product provides to tinyfleet's ESP-IDF start-up (esp32s3_main.cpp): these are the
// product's, not tinyfleet's, and are left undefined here on purpose: a build without them fails to link.
#pragma once

#include "esp32s3_agent.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"

// Bring the network up (Wi-Fi station, Ethernet, ...) and set the clock (SNTP); return once connected.
esp_err_t tinyfleet_app_network_up();
// Fill the broker URI and CA, device id and password and trusted bundle keys. The model runner is
// tinyfleet's TFLite Micro port (tinyfleet_model.h), set by esp32s3_main.cpp after this returns.
void tinyfleet_app_config(tinyfleet::esp32s3::Config& config);
// The TFLite Micro ops the product's models use (e.g. a static tflite::MicroMutableOpResolver<N> with them
// added); it outlives the agent.
const tflite::MicroOpResolver& tinyfleet_app_ops();
