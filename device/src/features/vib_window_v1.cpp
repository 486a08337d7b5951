// vib-window-v1 over the calibrated-sample ring, in place: the window is at most two contiguous runs of
// the ring's storage (before and after the wrap), read twice (sums, then outputs), never copied.
// Bit-exact with src/tinyfleet/bundles/features.py (device/tests/portable/test_features.cpp).
#include "tinyfleet/features.h"

namespace tinyfleet {
namespace features {

namespace {

struct Runs {
  const int16_t* first;  // the oldest frames, up to the end of the storage
  uint32_t first_frames;
  const int16_t* second;  // the rest, from the start of the storage
  uint32_t second_frames;
};

Runs runs_of(const RingWindow& w) {
  const uint32_t to_end = w.capacity - w.first;
  const uint32_t n = w.frames < to_end ? w.frames : to_end;
  return {w.storage + static_cast<size_t>(w.first) * kVibWindowChannels, n, w.storage, w.frames - n};
}

void add_run(const int16_t* s, uint32_t frames, int32_t sum[kVibWindowChannels]) {
  int32_t x = sum[0], y = sum[1], z = sum[2];
  for (uint32_t n = 0; n < frames; ++n, s += kVibWindowChannels) {
    x += s[0];
    y += s[1];
    z += s[2];
  }
  sum[0] = x;
  sum[1] = y;
  sum[2] = z;
}

inline int8_t quantize(int32_t sample, int32_t mean) {
  // Arithmetic shift (floor) on a negative int32: GCC and Clang define it, C++20 requires it.
  const int32_t q = (sample - mean + 1) >> 1;
  return static_cast<int8_t>(q < -128 ? -128 : q > 127 ? 127 : q);
}

int8_t* quantize_run(const int16_t* s, uint32_t frames, const int32_t mean[kVibWindowChannels], int8_t* out) {
  for (uint32_t n = 0; n < frames; ++n, s += kVibWindowChannels, out += kVibWindowChannels) {
    out[0] = quantize(s[0], mean[0]);
    out[1] = quantize(s[1], mean[1]);
    out[2] = quantize(s[2], mean[2]);
  }
  return out;
}

}  // namespace

void vib_window_v1(const RingWindow& window, int8_t* out) {
  const Runs r = runs_of(window);
  // 256 samples of at most 32767 in magnitude: |sum| < 2^23, no overflow in int32.
  int32_t mean[kVibWindowChannels] = {0, 0, 0};
  add_run(r.first, r.first_frames, mean);
  add_run(r.second, r.second_frames, mean);
  for (int32_t& m : mean) m >>= 8;  // floor(sum / 256), also for negative sums
  out = quantize_run(r.first, r.first_frames, mean, out);
  quantize_run(r.second, r.second_frames, mean, out);
}

}  // namespace features
}  // namespace tinyfleet
