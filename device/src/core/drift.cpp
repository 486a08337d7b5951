#include "tinyfleet/drift.h"

#include <cstring>

#include "tinyfleet/bytes.h"

namespace tinyfleet {

uint32_t latency_bucket(uint32_t us) {
  if (us >= kMaxWindowSamples) us = kMaxWindowSamples - 1;  // 2^24 - 1 µs, the histogram's range
  if (us < 16) return us;
  uint32_t e = 31u - static_cast<uint32_t>(__builtin_clz(us));
  return 16 + (e - 4) * 8 + ((us >> (e - 3)) & 7);
}

uint32_t latency_bucket_max(uint32_t bucket) {
  if (bucket < 16) return bucket;
  const uint32_t e = 4 + (bucket - 16) / 8;
  const uint32_t sub = (bucket - 16) % 8;
  return ((8 + sub + 1) << (e - 3)) - 1;
}

void DriftWindow::reset(uint16_t channel_count, uint64_t start_unix) {
  std::memset(static_cast<void*>(this), 0, sizeof *this);  // every member defaults to zero
  channels_ = channel_count > kMaxChannels ? kMaxChannels : channel_count;
  start_unix_ = start_unix;
}

void DriftWindow::add_frame(const int16_t* x) {
  if (samples_ >= kMaxWindowSamples) return;
  for (uint16_t c = 0; c < channels_; ++c) {
    sum_[c] += x[c];
    sum_sq_[c] += static_cast<uint64_t>(static_cast<int64_t>(x[c]) * x[c]);
  }
  ++samples_;
}

void DriftWindow::add_inference(const Decision& d, uint32_t latency_us) {
  ++inferences_;
  if (d.winner < 0) ++uncertain_;
  if (d.alarm) ++alarms_;
  ++confidence_hist_[d.confidence >> 4];
  uint16_t& bucket = latency_hist_[latency_bucket(latency_us)];
  if (bucket != UINT16_MAX) ++bucket;
  if (latency_us > latency_max_) latency_max_ = latency_us;
}

void DriftWindow::add_temperature(int16_t t) {
  if (temp_count_ == 0 || t < temp_min_) temp_min_ = t;
  if (temp_count_ == 0 || t > temp_max_) temp_max_ = t;
  temp_sum_ += t;
  ++temp_count_;
}

ChannelStats DriftWindow::channel(uint16_t c) const {
  ChannelStats s;
  if (samples_ == 0 || c >= channels_) return s;
  const int64_t n = samples_;
  const int64_t mean_q8 = (sum_[c] * 256) / n;
  const uint64_t ex2_q8 = (sum_sq_[c] * 256) / static_cast<uint64_t>(n);
  const uint64_t m2 = static_cast<uint64_t>(mean_q8 * mean_q8) / 256;
  s.mean_q8 = static_cast<int32_t>(mean_q8);
  s.var_q8 = ex2_q8 > m2 ? ex2_q8 - m2 : 0;
  return s;
}

uint32_t DriftWindow::latency_p99_us() const {
  if (inferences_ == 0) return 0;
  const uint64_t n = inferences_;
  const uint64_t above_allowed = n - (n * 99 + 99) / 100;  // n - ceil(0.99 n) may lie above the p99's bucket
  uint64_t above = 0;
  for (uint32_t b = kLatencyBuckets; b-- > 0;) {
    above += latency_hist_[b];
    if (above > above_allowed) return latency_bucket_max(b);
  }
  return latency_bucket_max(0);
}

size_t DriftWindow::encode(uint8_t* out, uint32_t epoch, uint32_t window_seq, uint32_t window_len_s,
                           const uint8_t running_digest[32]) const {
  const size_t len = kTelemetryHeaderLen + kTelemetryChannelLen * channels_;
  std::memset(out, 0, len);
  std::memcpy(out, "TFTM", 4);
  out[4] = 1;
  out[5] = static_cast<uint8_t>(channels_);
  out[6] = kTelemetryBins;
  store_u32le(out + 8, epoch);
  store_u32le(out + 12, window_seq);
  store_u64le(out + 16, start_unix_);
  store_u32le(out + 24, window_len_s);
  store_u32le(out + 28, samples_);
  store_u32le(out + 32, inferences_);
  store_u32le(out + 36, alarms_);
  store_u32le(out + 40, uncertain_);
  store_u32le(out + 44, latency_p99_us());
  store_u32le(out + 48, latency_max_);
  const int16_t none = -32768;
  const int16_t mean = temp_count_ == 0 ? none : static_cast<int16_t>(temp_sum_ / temp_count_);
  store_u16le(out + 52, static_cast<uint16_t>(temp_count_ == 0 ? none : temp_min_));
  store_u16le(out + 54, static_cast<uint16_t>(temp_count_ == 0 ? none : temp_max_));
  store_u16le(out + 56, static_cast<uint16_t>(mean));
  std::memcpy(out + 60, running_digest, 32);
  for (uint32_t b = 0; b < kTelemetryBins; ++b) store_u32le(out + 92 + 4 * b, confidence_hist_[b]);
  for (uint16_t c = 0; c < channels_; ++c) {
    const ChannelStats s = channel(c);
    store_u32le(out + 156 + 12 * c, static_cast<uint32_t>(s.mean_q8));
    store_u64le(out + 160 + 12 * c, s.var_q8);
  }
  return len;
}

}  // namespace tinyfleet
