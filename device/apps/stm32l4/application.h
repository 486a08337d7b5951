// The STM32L476 application loop: the agent, the model and the product's transport and sensor, one pass at
// a time from the firmware's main loop (main.cpp), single-threaded. Hardware-free: the image and the QEMU
// test drive the same class.
//
// A pass (step()):
//   1. the transport delivers what arrived (messages, connection changes, PUBACKs) to the agent;
//   2. the sensor's new frames go into the agent's calibrated ring (Agent::on_samples, counted in drift);
//   3. every `hop_frames` frames, the inference path: the feature extractor turns the ring's latest window
//      into the model's input, the Inference port (TFLite Micro) runs it and the agent's thresholds decide
//      on its output (Agent::on_inference, counted in the telemetry window with its latency);
//   4. every `tick_ms`, the sensor's temperature and the agent's tick (timers, telemetry publish).
// After every agent event, what it asked for outside the event: a health check (the trial's golden
// vectors, through the same Inference port) and then a reboot (Power::request_reboot).
#pragma once

#include <cstddef>
#include <cstdint>

#include "action_relay.h"
#include "app_ports.h"

namespace tinyfleet::app {

struct AppConfig {
  uint32_t hop_frames = 128;  // new frames between two inferences
  uint32_t tick_ms = 1000;    // period of Agent::on_tick
};

// What the loop has done, for the product's log and for tests.
struct AppCounters {
  uint32_t inferences = 0;       // outputs the thresholds decided on
  uint32_t window_short = 0;     // hops skipped: the ring held less than a window (Features: NotFound)
  uint32_t extract_failed = 0;   // hops skipped: the extractor refused the window or the input length
  uint32_t model_failed = 0;     // hops skipped: the Inference port returned an error (e.g. no model loaded)
  uint32_t health_checks = 0;
  Decision last;                 // the last decision
};

class Application {
 public:
  // Frames read from the sensor per pass, at most.
  static constexpr uint32_t kMaxFramesPerRead = 32;

  // input[input_cap] and output[output_cap] hold the model's tensors' bytes; set_model() says how many.
  Application(Agent& agent, ActionRelay& relay, Inference& model, Transport& transport, Sensor& sensor,
              Features& features, Power& power, Clock& clock, uint8_t* input, size_t input_cap, uint8_t* output,
              size_t output_cap, const AppConfig& config)
      : agent_(agent), relay_(relay), model_(model), transport_(transport), sensor_(sensor), features_(features),
        power_(power), clock_(clock), input_(input), input_cap_(input_cap), output_(output),
        output_cap_(output_cap), config_(config) {}

  // The loaded model's input and output tensor sizes (its bundle's manifest); 0 when no model is loaded, and
  // a size larger than the buffers: the loop runs no inference then (the agent's health check still runs).
  void set_model(size_t input_len, size_t output_len);
  // After boot selection: the bootloader's decision to the agent (the model already loaded for it).
  void boot(const BootDecision& decision);
  void step();
  const AppCounters& counters() const { return counters_; }

 private:
  void after_event();
  void run_inference();

  Agent& agent_;
  ActionRelay& relay_;
  Inference& model_;
  Transport& transport_;
  Sensor& sensor_;
  Features& features_;
  Power& power_;
  Clock& clock_;
  uint8_t* input_;
  size_t input_cap_;
  uint8_t* output_;
  size_t output_cap_;
  AppConfig config_;
  size_t input_len_ = 0;
  size_t output_len_ = 0;
  uint32_t frames_since_inference_ = 0;
  uint32_t last_tick_ms_ = 0;
  AppCounters counters_;
  int16_t frames_[kMaxFramesPerRead * kMaxChannels] = {};
};

}  // namespace tinyfleet::app
