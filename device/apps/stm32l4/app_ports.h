// The seams of the STM32L476 application (application.h) to what the product provides: its MQTT client, its
// sensor and the feature extractor its models name. Each is an interface the application loop calls; the
// product's implementations are behind stm32l4_product.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/agent.h"

namespace tinyfleet::app {

// The product's MQTT client (no MQTT stack is part of this repository for bare-metal STM32). As the agent's
// ActionSink it sends what the agent decides: Subscribe, Unsubscribe and Publish (copying topic and payload,
// the topic rendered with Agent::topic()); RunHealthCheck and Reboot never reach it (ActionRelay keeps them).
// poll() delivers what arrived since the last call to the agent's events (on_message, on_connection_up/down,
// on_publish_acked), from the application loop only, never from inside perform().
class Transport {
 public:
  virtual void send(const Action& a) = 0;
  virtual void poll(Agent& agent) = 0;

 protected:
  ~Transport() = default;
};

// The sensor: raw int16 frames (the calibration's channel_count samples each, interleaved), as they come.
class Sensor {
 public:
  // Up to max_frames frames into out[max_frames * channels]; how many were written (0: none ready).
  virtual uint32_t read(int16_t* out, uint32_t max_frames, uint16_t channels) = 0;
  // The sensor's temperature in degrees Celsius x 256, when it has a reading.
  virtual bool temperature(int16_t& temp_q8) = 0;

 protected:
  ~Sensor() = default;
};

// The running model's feature extractor: the agent's latest calibrated window (Agent::latest_frames) to the
// model's input tensor, out[len] (len: the input tensor's bytes). Ok; NotFound while the ring holds fewer
// frames than a window; InvalidArgument if len is not what the extractor writes.
class Features {
 public:
  virtual Status extract(const Agent& agent, uint8_t* out, size_t len) = 0;

 protected:
  ~Features() = default;
};

}  // namespace tinyfleet::app
