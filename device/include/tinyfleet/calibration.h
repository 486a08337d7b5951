// The inference path's fixed-point pieces (docs/bundle-format.md "Calibration", "Thresholds"):
// per-channel calibration of int16 samples into a circular buffer the application provides, and the
// decision rule on model outputs. Raw samples stay here; only drift statistics (drift.h) leave the device.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/status.h"

namespace tinyfleet {

constexpr uint16_t kMaxChannels = 16;
constexpr uint16_t kMaxClasses = 64;

struct ChannelCalibration {
  int32_t offset = 0;
  int32_t gain_q16 = 1 << 16;
  int32_t baseline_mean_q8 = 0;
  uint32_t baseline_std_q8 = 0;
};

struct Calibration {
  uint16_t channel_count = 0;
  uint32_t sample_rate_hz = 0;
  ChannelCalibration channels[kMaxChannels];
};

// A class's 16-byte label in the record is for people (server, dashboards): the device decides by index
// and keeps only what decide() reads.
struct ClassThreshold {
  int16_t min_score = 0;
  bool alarm = false;
};

struct Thresholds {
  uint16_t class_count = 0;
  ClassThreshold classes[kMaxClasses];
};

// Component payload parsers: Ok or MalformedMessage (magic, version, counts, length, gain <= 0, flags).
Status parse_calibration(const uint8_t* data, size_t len, Calibration& out);
Status parse_thresholds(const uint8_t* data, size_t len, Thresholds& out);

// clamp_i16(((raw - offset) * gain_q16) >> 16), 64-bit, arithmetic shift.
int16_t calibrate(const ChannelCalibration& c, int32_t raw);

struct Decision {
  int16_t winner = -1;     // class index, -1 = uncertain
  bool alarm = false;
  uint8_t confidence = 0;  // largest output mapped to 0..255
};

// Output scores: int8 (dtype 1) or uint8 (dtype 2) tensors; uint8 values map to the int8 scale (v - 128)
// before comparing with min_score. Largest qualifying output wins, lowest index on ties.
Decision decide(const Thresholds& t, const uint8_t* output, size_t n, uint8_t dtype);

// `frames` consecutive calibrated frames read in place where a SampleRing holds them (no copy): frame i
// (0 = oldest) is the `channels` int16 values at storage + ((first + i) % capacity) * channels.
struct RingWindow {
  const int16_t* storage = nullptr;
  uint32_t capacity = 0;  // whole frames in storage
  uint32_t first = 0;     // slot of the oldest frame, < capacity
  uint32_t frames = 0;
  uint16_t channels = 0;
};

// Circular buffer of calibrated frames over storage the application owns: how many frames its feature
// extractor needs is its choice, so the buffer is its RAM, not the agent's.
class SampleRing {
 public:
  // `samples` int16 slots (all channels together; frames = samples / channel_count); nullptr/0 detaches.
  void attach(int16_t* storage, uint32_t samples) {
    buf_ = storage;
    size_ = storage != nullptr ? samples : 0;
  }
  // Ok, or InvalidArgument for 0 or > 16 channels. The ring keeps a reference to `cal` (the agent's own
  // calibration, not a second copy of it): cal must outlive the ring's use and not change meanwhile.
  Status reset(const Calibration& cal);
  // One frame of channel_count raw samples, calibrated; kept if storage is attached, and returned through
  // `out` if given (also without storage).
  void push(const int16_t* raw, int16_t* out = nullptr);
  uint32_t frames() const { return count_; }
  uint32_t capacity_frames() const { return capacity_; }
  // Copies the most recent `frames` frames, oldest first, interleaved; false if fewer are held.
  bool latest(int16_t* out, uint32_t frames) const;
  // The most recent `frames` frames where they lie (a feature extractor's input, read in place); false if
  // fewer are held (or frames is 0).
  bool window(uint32_t frames, RingWindow& out) const {
    if (frames == 0 || frames > count_) return false;
    out.storage = buf_;
    out.capacity = capacity_;
    out.first = (head_ + capacity_ - frames) % capacity_;
    out.frames = frames;
    out.channels = channels_;
    return true;
  }

 private:
  const Calibration* cal_ = nullptr;
  int16_t* buf_ = nullptr;
  uint32_t size_ = 0;  // int16 slots in buf_
  uint16_t channels_ = 0;
  uint32_t capacity_ = 0;  // whole frames in buf_
  uint32_t head_ = 0;      // next frame slot
  uint32_t count_ = 0;
};

}  // namespace tinyfleet
