// What an ESP32-S3 product provides to tinyfleet's ESP-IDF start-up (esp32s3_main.cpp): these are the
// product's, not tinyfleet's, and are left undefined here on purpose: a build without them fails to link.
#pragma once

#include "esp32s3_agent.h"

// Bring the network up (Wi-Fi station, Ethernet, ...) and set the clock (SNTP); return once connected.
esp_err_t tinyfleet_app_network_up();
// Fill the broker URI and CA, device id and password, trusted bundle keys and the model runner (a
// tinyfleet::Inference over TensorFlow Lite Micro, e.g. the esp-tflite-micro component).
void tinyfleet_app_config(tinyfleet::esp32s3::Config& config);
