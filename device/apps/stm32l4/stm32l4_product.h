// What the product provides to the STM32L476 application image (main.cpp), as the ESP32-S3 environment's
// tinyfleet_app.h does: board bring-up, identity and keys, the MQTT client, the sensor, the feature
// extractor the product's models name, and the TensorFlow Lite Micro ops they use. None of these is in this
// repository: the application is built here against link-check stand-ins (device/targets/cortex-m/app).
#pragma once

#include <cstdint>

#include "app_ports.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"
#include "tinyfleet/agent.h"

// Clocks, sensor and network interface, before the agent starts.
void tinyfleet_product_init();
// Device id, hardware class ("stm32l4"), trusted keys: read while the image's static objects are
// constructed, before tinyfleet_product_init(); what it points to lives as long as the image.
void tinyfleet_product_config(tinyfleet::AgentConfig& config);
tinyfleet::app::Transport& tinyfleet_product_transport();
tinyfleet::app::Sensor& tinyfleet_product_sensor();
tinyfleet::app::Features& tinyfleet_product_features();
const tflite::MicroOpResolver& tinyfleet_product_ops();
// Wall-clock time from the product's network (SNTP) or RTC; 0 while unknown (ports.h's Clock allows it).
uint64_t tinyfleet_product_unix_seconds();
// Battery charge in percent (100 for a mains-powered board).
uint8_t tinyfleet_product_battery_pct();
