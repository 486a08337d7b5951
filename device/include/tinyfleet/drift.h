// Drift metadata of one telemetry window, in fixed point (docs/device-protocol.md "Telemetry"):
// per-channel sums of calibrated input, the model-confidence histogram, a latency histogram for p99,
// temperature and decision counts. encode() writes the TFTM record; raw samples are never kept.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/calibration.h"
#include "tinyfleet/protocol.h"

namespace tinyfleet {

constexpr uint32_t kLatencyBuckets = 176;
constexpr uint32_t kMaxWindowSamples = 1u << 24;
constexpr size_t kMaxTelemetryLen = kTelemetryHeaderLen + kTelemetryChannelLen * kMaxChannels;

// Bucket of a latency (µs, clamped to 2^24 - 1) and the largest value that bucket holds.
uint32_t latency_bucket(uint32_t us);
uint32_t latency_bucket_max(uint32_t bucket);

struct ChannelStats {
  int32_t mean_q8 = 0;
  uint64_t var_q8 = 0;
};

class DriftWindow {
 public:
  void reset(uint16_t channel_count, uint64_t start_unix);
  // One calibrated frame (channel_count values). Frames past 2^24 per window are not counted.
  void add_frame(const int16_t* calibrated);
  void add_inference(const Decision& d, uint32_t latency_us);
  void add_temperature(int16_t temp_q8);

  uint16_t channel_count() const { return channels_; }
  uint32_t sample_count() const { return samples_; }
  uint32_t inference_count() const { return inferences_; }
  bool full() const { return samples_ >= kMaxWindowSamples; }
  ChannelStats channel(uint16_t c) const;
  uint32_t latency_p99_us() const;

  // Writes the TFTM record; returns its length (156 + 12 * channel_count).
  size_t encode(uint8_t* out, uint32_t epoch, uint32_t window_seq, uint32_t window_len_s,
                const uint8_t running_digest[32]) const;

 private:
  uint16_t channels_ = 0;
  uint64_t start_unix_ = 0;
  uint32_t samples_ = 0;
  int64_t sum_[kMaxChannels] = {};
  uint64_t sum_sq_[kMaxChannels] = {};
  uint32_t inferences_ = 0;
  uint32_t alarms_ = 0;
  uint32_t uncertain_ = 0;
  uint32_t latency_max_ = 0;
  // uint16, saturating at 65535 (352 B less RAM than uint32). latency_p99_us() counts down from the top
  // bucket against the exact inferences_, so only the top 1% must be counted exactly: the p99 is exact below
  // 6,553,500 inferences per window (1% of them fit one bucket), and no higher than exact beyond that.
  uint16_t latency_hist_[kLatencyBuckets] = {};
  uint32_t confidence_hist_[kTelemetryBins] = {};
  int16_t temp_min_ = 0;
  int16_t temp_max_ = 0;
  int64_t temp_sum_ = 0;
  uint32_t temp_count_ = 0;
};

}  // namespace tinyfleet
