// The inference path: the running model's calibration and decision rule applied to the application's
// samples and outputs, and the telemetry window (TFTM) they are counted in. It takes no part in the update
// cycle; the agent loads the running bundle's calibration and thresholds into it at boot and publishes the
// window when it is due.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/bytes.h"
#include "tinyfleet/calibration.h"
#include "tinyfleet/drift.h"

namespace tinyfleet {

class InferencePath {
 public:
  // The running model, from its bundle's components: a record that does not parse leaves the defaults.
  void forget_model() {
    reset_in_place(cal_);
    reset_in_place(thresholds_);
  }
  void load_calibration(const uint8_t* data, size_t len) {
    if (parse_calibration(data, len, cal_) != Status::Ok) reset_in_place(cal_);
  }
  void load_thresholds(const uint8_t* data, size_t len) {
    if (parse_thresholds(data, len, thresholds_) != Status::Ok) reset_in_place(thresholds_);
  }
  void set_output_dtype(uint8_t dtype) { output_dtype_ = dtype; }
  // After the model is loaded: an empty ring and the first telemetry window from now.
  void start(uint64_t unix_s, uint32_t now_ms) {
    ring_.reset(cal_);
    next_window(unix_s, now_ms);
    window_seq_ = 0;
  }

  void attach_sample_ring(int16_t* storage, uint32_t samples);
  void on_samples(const int16_t* raw, uint32_t frames);
  bool latest_frames(int16_t* out, uint32_t frames) const { return ring_.latest(out, frames); }
  bool latest_window(uint32_t frames, RingWindow& out) const { return ring_.window(frames, out); }
  Decision on_inference(const uint8_t* output, size_t len, uint32_t latency_us);
  void on_temperature(int16_t temp_q8) { drift_.add_temperature(temp_q8); }
  const Calibration& calibration() const { return cal_; }
  const DriftWindow& drift() const { return drift_; }

  // The window's TFTM record into out if the telemetry period has passed (or the window is full): its
  // length, else 0. Once it is sent, next_window() starts the next one.
  size_t close_window(uint32_t now_ms, uint32_t period_s, uint32_t epoch, const uint8_t running_digest[32],
                      uint8_t out[kMaxTelemetryLen]);
  void next_window(uint64_t unix_s, uint32_t now_ms) {
    drift_.reset(cal_.channel_count, unix_s);
    window_ms_ = now_ms;
  }

 private:
  Calibration cal_;
  Thresholds thresholds_;
  uint8_t output_dtype_ = 1;
  SampleRing ring_;
  DriftWindow drift_;
  uint32_t window_ms_ = 0;
  uint32_t window_seq_ = 0;
};

}  // namespace tinyfleet
