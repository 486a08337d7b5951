#include "tinyfleet/calibration.h"

#include <cstring>

#include "tinyfleet/bytes.h"

namespace tinyfleet {

Status parse_calibration(const uint8_t* p, size_t len, Calibration& out) {
  if (len < 12 || std::memcmp(p, "TFCA", 4) != 0 || load_u16le(p + 4) != 1) return Status::MalformedMessage;
  const uint16_t n = load_u16le(p + 6);
  if (n < 1 || n > kMaxChannels || len != 12u + 16u * n) return Status::MalformedMessage;
  out.channel_count = n;
  out.sample_rate_hz = load_u32le(p + 8);
  for (uint16_t i = 0; i < n; ++i) {
    const uint8_t* r = p + 12 + 16 * i;
    ChannelCalibration& c = out.channels[i];
    c.offset = static_cast<int32_t>(load_u32le(r));
    c.gain_q16 = static_cast<int32_t>(load_u32le(r + 4));
    c.baseline_mean_q8 = static_cast<int32_t>(load_u32le(r + 8));
    c.baseline_std_q8 = load_u32le(r + 12);
    if (c.gain_q16 <= 0) return Status::MalformedMessage;
  }
  return Status::Ok;
}

Status parse_thresholds(const uint8_t* p, size_t len, Thresholds& out) {
  if (len < 8 || std::memcmp(p, "TFTH", 4) != 0 || load_u16le(p + 4) != 1) return Status::MalformedMessage;
  const uint16_t n = load_u16le(p + 6);
  if (n < 1 || n > kMaxClasses || len != 8u + 20u * n) return Status::MalformedMessage;
  out.class_count = n;
  for (uint16_t i = 0; i < n; ++i) {
    const uint8_t* r = p + 8 + 20 * i;
    ClassThreshold& c = out.classes[i];
    c.min_score = static_cast<int16_t>(load_u16le(r));
    if (c.min_score < -128 || c.min_score > 127 || (r[2] & ~1u) != 0 || r[3] != 0) return Status::MalformedMessage;
    c.alarm = (r[2] & 1) != 0;
  }
  return Status::Ok;
}

int16_t calibrate(const ChannelCalibration& c, int32_t raw) {
  const int64_t v = (static_cast<int64_t>(raw) - c.offset) * static_cast<int64_t>(c.gain_q16);
  // >> on a negative int64 is arithmetic on every compiler we target (and defined in C++20).
  const int64_t q = v >> 16;
  if (q > 32767) return 32767;
  if (q < -32768) return -32768;
  return static_cast<int16_t>(q);
}

Decision decide(const Thresholds& t, const uint8_t* output, size_t n, uint8_t dtype) {
  Decision d;
  int best = -1;
  int16_t best_score = 0;
  int16_t top = -129;
  for (size_t i = 0; i < n; ++i) {
    const int16_t score = dtype == 2 ? static_cast<int16_t>(output[i] - 128)
                                     : static_cast<int16_t>(static_cast<int8_t>(output[i]));
    if (score > top) top = score;
    if (i < t.class_count && score >= t.classes[i].min_score && (best < 0 || score > best_score)) {
      best = static_cast<int>(i);
      best_score = score;
    }
  }
  d.confidence = n == 0 ? 0 : static_cast<uint8_t>(top + 128);
  d.winner = static_cast<int16_t>(best);
  d.alarm = best >= 0 && t.classes[best].alarm;
  return d;
}

Status SampleRing::reset(const Calibration& cal) {
  if (cal.channel_count < 1 || cal.channel_count > kMaxChannels) return Status::InvalidArgument;
  cal_ = &cal;
  channels_ = cal.channel_count;
  capacity_ = size_ / cal.channel_count;
  head_ = 0;
  count_ = 0;
  return Status::Ok;
}

void SampleRing::push(const int16_t* raw, int16_t* out) {
  if (cal_ == nullptr) return;
  int16_t* slot = capacity_ != 0 ? buf_ + static_cast<size_t>(head_) * channels_ : nullptr;
  for (uint16_t c = 0; c < channels_; ++c) {
    const int16_t v = calibrate(cal_->channels[c], raw[c]);
    if (slot != nullptr) slot[c] = v;
    if (out != nullptr) out[c] = v;
  }
  if (capacity_ == 0) return;
  head_ = (head_ + 1) % capacity_;
  if (count_ < capacity_) ++count_;
}

bool SampleRing::latest(int16_t* out, uint32_t frames) const {
  if (frames > count_ || capacity_ == 0) return frames == 0;
  uint32_t start = (head_ + capacity_ - frames) % capacity_;
  for (uint32_t f = 0; f < frames; ++f) {
    const int16_t* slot = buf_ + static_cast<size_t>((start + f) % capacity_) * channels_;
    std::memcpy(out + static_cast<size_t>(f) * channels_, slot, sizeof(int16_t) * channels_);
  }
  return true;
}

}  // namespace tinyfleet
