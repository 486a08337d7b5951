// vib-window-v1 over the calibrated-sample ring, in place: the window is at most two contiguous runs of
// the ring's storage (before and after the wrap), read twice (sums, then outputs), never copied.
// Bit-exact with src/tinyfleet/bundles/features.py (device/tests/features/test_features.cpp).
#include "tinyfleet/features.h"

#if defined(__ARM_FEATURE_SAT)
#include <arm_acle.h>
#endif

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

// clamp_i8((sample - mean + 1) >> 1), given mean - 1. Arithmetic shift (floor) on a negative int32: GCC and
// Clang define it, C++20 requires it. On cores with the saturating instructions (Cortex-M4) shift and clamp
// are one SSAT.
inline int8_t quantize(int32_t sample, int32_t mean_less_one) {
  const int32_t q = (sample - mean_less_one) >> 1;
#if defined(__ARM_FEATURE_SAT)
  return static_cast<int8_t>(__ssat(q, 8));
#else
  return static_cast<int8_t>(q < -128 ? -128 : q > 127 ? 127 : q);
#endif
}

int8_t* quantize_run(const int16_t* s, uint32_t frames, const int32_t mean[kVibWindowChannels], int8_t* out) {
  // In locals: out is int8_t, which may alias anything, so mean[] would be read again after every store.
  const int32_t x = mean[0] - 1, y = mean[1] - 1, z = mean[2] - 1;
  for (uint32_t n = 0; n < frames; ++n, s += kVibWindowChannels, out += kVibWindowChannels) {
    out[0] = quantize(s[0], x);
    out[1] = quantize(s[1], y);
    out[2] = quantize(s[2], z);
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
