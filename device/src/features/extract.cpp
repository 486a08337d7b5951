// The extractor table: which extractor a FeatureExtractorId names, its shape, and the one entry point that
// checks a window against that shape before running it.
#include "tinyfleet/features.h"

namespace tinyfleet {
namespace features {

Shape shape(FeatureExtractorId id) {
  Shape s;
  if (id == FeatureExtractorId::VibWindowV1) {
    s.frames = kVibWindowFrames;
    s.channels = kVibWindowChannels;
  }
  return s;
}

Status extract(FeatureExtractorId id, const RingWindow& window, int8_t* out, size_t out_len) {
  const Shape s = shape(id);
  if (s.frames == 0 || window.frames != s.frames || window.channels != s.channels || window.storage == nullptr ||
      window.capacity < window.frames || window.first >= window.capacity || out == nullptr ||
      out_len != s.output_bytes()) {
    return Status::InvalidArgument;
  }
  vib_window_v1(window, out);
  return Status::Ok;
}

}  // namespace features
}  // namespace tinyfleet
