// Feature extractors: a window of calibrated samples to the model's int8 input tensor, the firmware's half of
// the model contract (docs/models.md, "Feature extractor"). A bundle names its extractor in the signed
// manifest (feature_extractor_version); the trial health check fails with HealthFeatureExtractor, before any
// golden vector runs, when this firmware has no extractor of that name.
//
// find_feature_extractor() is the core's (the health check calls it: inline, a few bytes); the extractors
// themselves are the tinyfleet_features library (src/features/), linked by the applications that run a
// model. Fixed point only, no heap, no state: an extractor reads the agent's calibrated-sample ring in place
// (RingWindow, Agent::latest_window) and writes the caller's buffer, normally the model's input tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tinyfleet/calibration.h"
#include "tinyfleet/status.h"

namespace tinyfleet {

enum class FeatureExtractorId : uint8_t { Unknown = 0, VibWindowV1 = 1 };
constexpr char kVibWindowV1Name[] = "vib-window-v1";

// The extractor a manifest's NUL-terminated feature_extractor_version names, or Unknown.
inline FeatureExtractorId find_feature_extractor(const char* version) {
  return std::strcmp(version, kVibWindowV1Name) == 0 ? FeatureExtractorId::VibWindowV1 : FeatureExtractorId::Unknown;
}
// Its name, nullptr for Unknown.
inline const char* feature_extractor_name(FeatureExtractorId id) {
  return id == FeatureExtractorId::VibWindowV1 ? kVibWindowV1Name : nullptr;
}

namespace features {

// What an extractor reads and writes: a window of `frames` frames of `channels` calibrated samples in, and
// frames * channels int8 values out (row-major, frame-major: the model's input tensor byte for byte).
struct Shape {
  uint32_t frames = 0;
  uint16_t channels = 0;
  uint32_t output_bytes() const { return frames * channels; }
};

// vib-window-v1: 256 frames of 3 channels (milli-g); per channel mean = (int32 sum) >> 8, then
// clamp_i8((s - mean + 1) >> 1). The window must be exactly that shape (extract() checks it).
constexpr uint32_t kVibWindowFrames = 256;
constexpr uint16_t kVibWindowChannels = 3;
void vib_window_v1(const RingWindow& window, int8_t* out);

// The shape of extractor `id` ({0, 0} for Unknown).
Shape shape(FeatureExtractorId id);

// Runs extractor `id` over `window` into out[out_len]. InvalidArgument (out untouched) if the extractor is
// Unknown, the window is not its shape or does not lie inside its storage, or out_len is not its output size.
Status extract(FeatureExtractorId id, const RingWindow& window, int8_t* out, size_t out_len);

}  // namespace features
}  // namespace tinyfleet
