// The feature extractor's instructions per window on the Cortex-M4, counted by QEMU: bench/feature_instructions.py
// runs this image under qemu-system-arm with an execution trace of every instruction (-singlestep -d
// exec,nochain) and counts the instructions executed inside tinyfleet::features between two calls of
// tinyfleet_window_done(). It extracts validation and edge windows from a SampleRing the way the firmware does,
// some contiguous in the ring's storage and some wrapped around its end.
#include <cstdint>

#include "feature_data.h"
#include "semihost.h"
#include "tinyfleet/features.h"

using namespace tinyfleet;

extern "C" __attribute__((noinline)) void tinyfleet_window_done(uint32_t window) {
  asm volatile("" : : "r"(window) : "memory");  // a call the trace can see, and nothing else
}

namespace {

constexpr uint32_t kRingFrames = 300;
int16_t g_storage[kRingFrames * features::kVibWindowChannels];
int8_t g_input[features::kVibWindowFrames * features::kVibWindowChannels];

void push_window(SampleRing& ring, const char* samples) {
  for (uint32_t n = 0; n < features::kVibWindowFrames; ++n) {
    int16_t frame[features::kVibWindowChannels];
    for (uint32_t c = 0; c < features::kVibWindowChannels; ++c) {
      const char* p = samples + (n * features::kVibWindowChannels + c) * 2;
      frame[c] = static_cast<int16_t>(static_cast<uint16_t>(static_cast<uint8_t>(p[0]) |
                                                            static_cast<uint8_t>(p[1]) << 8));
    }
    ring.push(frame);
  }
}

}  // namespace

int main() {
  static Calibration identity;
  identity.channel_count = features::kVibWindowChannels;
  SampleRing ring;
  ring.attach(g_storage, kRingFrames * features::kVibWindowChannels);
  ring.reset(identity);
  const size_t window_bytes = sizeof g_input * 2;
  uint32_t failures = 0;
  // Windows 0..3 of the validation set then the edge windows: the ring's 300 frames make the first window
  // contiguous and wrap most of the others.
  for (uint32_t i = 0; i < 4 + tffeat::kEdgeCount; ++i) {
    const char* samples = i < 4 ? tffeat::kValSamples + i * window_bytes : tffeat::kEdgeSamples + (i - 4) * window_bytes;
    push_window(ring, samples);
    RingWindow w;
    if (!ring.window(features::kVibWindowFrames, w)) return 1;
    semihost::write(w.first + w.frames > w.capacity ? "wrapped " : "contiguous ");
    tinyfleet_window_done(i);
    if (features::extract(FeatureExtractorId::VibWindowV1, w, g_input, sizeof g_input) != Status::Ok) ++failures;
    tinyfleet_window_done(i);
  }
  semihost::write("\n");
  return static_cast<int>(failures);
}
