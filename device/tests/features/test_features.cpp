// The C++ feature extractor against the Python reference (tinyfleet.bundles.features), bit for bit, on every
// window of models/sample/val.npz and on windows at the int16 limits: written once (tinytest), run by
// agent_tests on the host and by the Cortex-M4 test image under QEMU. Each window goes the device's way:
// raw frames pushed through the agent's calibration into a SampleRing, then extracted from the ring in place.
// The ring holds 300 frames, so successive windows start at every offset and most of them wrap.
#include <cstring>

#include "feature_data.h"
#include "tinyfleet/features.h"
#include "tinytest.h"

using namespace tinyfleet;

namespace {

constexpr uint32_t kRingFrames = 300;
constexpr size_t kOut = features::kVibWindowFrames * features::kVibWindowChannels;

// Identity calibration (offset 0, gain 1.0 in Q16.16): the ring holds the embedded samples unchanged.
const Calibration& identity() {
  static Calibration cal;
  cal.channel_count = 3;
  cal.sample_rate_hz = 1000;
  return cal;
}

struct Fixture {
  int16_t storage[kRingFrames * 3];
  SampleRing ring;
  int8_t out[kOut];
};

Fixture& fixture() {
  static Fixture f;
  f.ring.attach(f.storage, kRingFrames * 3);
  f.ring.reset(identity());
  return f;
}

// Pushes one embedded window (little-endian int16 bytes) into the ring, frame by frame.
void push_window(SampleRing& ring, const char* samples) {
  for (uint32_t n = 0; n < features::kVibWindowFrames; ++n) {
    int16_t frame[3];
    for (uint32_t c = 0; c < 3; ++c) {
      const char* p = samples + (n * 3 + c) * 2;
      frame[c] = static_cast<int16_t>(static_cast<uint16_t>(static_cast<uint8_t>(p[0]) |
                                                            static_cast<uint8_t>(p[1]) << 8));
    }
    ring.push(frame);
  }
}

// Extracts the ring's latest window; true if it equals `expected` byte for byte.
bool extracts(Fixture& f, const char* expected) {
  RingWindow w;
  if (!TT_EXPECT(f.ring.window(features::kVibWindowFrames, w))) return false;
  std::memset(f.out, 0x55, sizeof f.out);
  if (!TT_EXPECT_STATUS(features::extract(FeatureExtractorId::VibWindowV1, w, f.out, kOut), Status::Ok)) return false;
  return std::memcmp(f.out, expected, kOut) == 0;
}

}  // namespace

TT_TEST(Features, ValidationSetBitExact) {
  TT_ASSERT_EQ(tffeat::kFrames, features::kVibWindowFrames);
  TT_ASSERT_EQ(tffeat::kChannels, features::kVibWindowChannels);
  TT_ASSERT_EQ(tffeat::kValCount, 1000u);
  Fixture& f = fixture();
  uint32_t mismatched = 0;
  uint32_t wrapped = 0;
  for (uint32_t i = 0; i < tffeat::kValCount; ++i) {
    push_window(f.ring, tffeat::kValSamples + static_cast<size_t>(i) * kOut * 2);
    RingWindow w;
    TT_ASSERT(f.ring.window(features::kVibWindowFrames, w));
    if (w.first + w.frames > w.capacity) ++wrapped;
    if (!extracts(f, tffeat::kValExpected + static_cast<size_t>(i) * kOut)) {
      if (mismatched == 0) {
        tt::log("first window that differs from val.npz:");
        tt::log_u32(i);
      }
      ++mismatched;
    }
  }
  TT_EXPECT_EQ(mismatched, 0u);
  TT_EXPECT(wrapped > 500);  // the ring's wrap is exercised, not only contiguous windows
}

TT_TEST(Features, EdgeWindowsBitExact) {
  TT_ASSERT(tffeat::kEdgeCount >= 4);
  Fixture& f = fixture();
  for (uint32_t i = 0; i < tffeat::kEdgeCount; ++i) {
    push_window(f.ring, tffeat::kEdgeSamples + static_cast<size_t>(i) * kOut * 2);
    tt::note(tffeat::kEdgeNames[i]);
    TT_EXPECT(extracts(f, tffeat::kEdgeExpected + static_cast<size_t>(i) * kOut));
  }
}

TT_TEST(Features, ContiguousAndWrappedWindowsAgree) {
  // The same window read from storage that holds it in one run, and from a ring where it wraps after
  // every possible frame.
  static int16_t flat[kOut];
  for (uint32_t n = 0; n < features::kVibWindowFrames; ++n) {
    for (uint32_t c = 0; c < 3; ++c) flat[n * 3 + c] = static_cast<int16_t>((n * 7919 + c * 104729) % 65536 - 32768);
  }
  RingWindow whole{flat, features::kVibWindowFrames, 0, features::kVibWindowFrames, 3};
  static int8_t want[kOut];
  TT_ASSERT_STATUS(features::extract(FeatureExtractorId::VibWindowV1, whole, want, kOut), Status::Ok);
  Fixture& f = fixture();
  for (uint32_t shift = 0; shift < kRingFrames; shift += 13) {
    f.ring.reset(identity());
    for (uint32_t k = 0; k < shift; ++k) f.ring.push(flat);  // filler frames move the window's start
    for (uint32_t n = 0; n < features::kVibWindowFrames; ++n) f.ring.push(flat + n * 3);
    RingWindow w;
    TT_ASSERT(f.ring.window(features::kVibWindowFrames, w));
    TT_EXPECT_STATUS(features::extract(FeatureExtractorId::VibWindowV1, w, f.out, kOut), Status::Ok);
    TT_EXPECT(std::memcmp(f.out, want, kOut) == 0);
  }
}

TT_TEST(Features, RefusesWhatIsNotItsShape) {
  static int16_t storage[300 * 4];
  static int8_t out[kOut + 1];
  std::memset(out, 0x11, sizeof out);
  const RingWindow ok{storage, 300, 299, 256, 3};
  const FeatureExtractorId v1 = FeatureExtractorId::VibWindowV1;
  TT_EXPECT_STATUS(features::extract(FeatureExtractorId::Unknown, ok, out, kOut), Status::InvalidArgument);
  RingWindow w = ok;
  w.frames = 255;
  TT_EXPECT_STATUS(features::extract(v1, w, out, kOut), Status::InvalidArgument);
  w = ok;
  w.channels = 4;
  TT_EXPECT_STATUS(features::extract(v1, w, out, kOut), Status::InvalidArgument);
  w = ok;
  w.first = 300;
  TT_EXPECT_STATUS(features::extract(v1, w, out, kOut), Status::InvalidArgument);
  w = ok;
  w.capacity = 255;
  w.first = 0;
  TT_EXPECT_STATUS(features::extract(v1, w, out, kOut), Status::InvalidArgument);
  w = ok;
  w.storage = nullptr;
  TT_EXPECT_STATUS(features::extract(v1, w, out, kOut), Status::InvalidArgument);
  TT_EXPECT_STATUS(features::extract(v1, ok, out, kOut - 1), Status::InvalidArgument);
  TT_EXPECT_STATUS(features::extract(v1, ok, out, kOut + 1), Status::InvalidArgument);
  TT_EXPECT_STATUS(features::extract(v1, ok, nullptr, kOut), Status::InvalidArgument);
  bool untouched = true;
  for (int8_t b : out) untouched = untouched && b == 0x11;
  TT_EXPECT(untouched);
  TT_EXPECT_STATUS(features::extract(v1, ok, out, kOut), Status::Ok);
}

TT_TEST(Features, KnownByManifestName) {
  TT_EXPECT(find_feature_extractor("vib-window-v1") == FeatureExtractorId::VibWindowV1);
  TT_EXPECT(find_feature_extractor("") == FeatureExtractorId::Unknown);
  TT_EXPECT(find_feature_extractor("vib-window-v2") == FeatureExtractorId::Unknown);
  TT_EXPECT(find_feature_extractor("vib-window-v1 ") == FeatureExtractorId::Unknown);
  TT_EXPECT(find_feature_extractor("vib-window") == FeatureExtractorId::Unknown);
  TT_EXPECT_EQ(features::shape(FeatureExtractorId::VibWindowV1).output_bytes(), 768u);
  TT_EXPECT_EQ(features::shape(FeatureExtractorId::Unknown).output_bytes(), 0u);
}
