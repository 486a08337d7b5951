#include "tinyfleet/inference_path.h"

namespace tinyfleet {

void InferencePath::attach_sample_ring(int16_t* storage, uint32_t samples) {
  ring_.attach(storage, samples);
  if (cal_.channel_count != 0) ring_.reset(cal_);
}

void InferencePath::on_samples(const int16_t* raw, uint32_t frames) {
  int16_t calibrated[kMaxChannels];
  if (cal_.channel_count == 0) return;
  for (uint32_t f = 0; f < frames; ++f) {
    ring_.push(raw + static_cast<size_t>(f) * cal_.channel_count, calibrated);
    drift_.add_frame(calibrated);
  }
}

Decision InferencePath::on_inference(const uint8_t* output, size_t len, uint32_t latency_us) {
  Decision d = decide(thresholds_, output, len, output_dtype_);
  drift_.add_inference(d, latency_us);
  return d;
}

size_t InferencePath::close_window(uint32_t now_ms, uint32_t period_s, uint32_t epoch,
                                   const uint8_t running_digest[32], uint8_t out[kMaxTelemetryLen]) {
  const uint32_t elapsed = now_ms - window_ms_;
  if (elapsed < period_s * 1000u && !drift_.full()) return 0;
  return drift_.encode(out, epoch, ++window_seq_, elapsed / 1000, running_digest);
}

}  // namespace tinyfleet
