// The feature extractor's test windows, embedded in the test program (feature_data.cpp is generated at build
// time by gen_feature_data.py from vib-window-v1.xz, which scripts/gen_feature_windows.py writes, and from
// models/sample/val.npz). Samples are little-endian int16, frame-major; expected outputs are the Python
// reference's (tinyfleet.bundles.features) int8 bytes.
#pragma once

#include <cstdint>

namespace tffeat {

extern const uint32_t kFrames;
extern const uint32_t kChannels;
// The validation set's windows; their expected outputs are val.npz's `inputs`.
extern const uint32_t kValCount;
extern const char kValSamples[];   // kValCount * kFrames * kChannels * 2 bytes
extern const char kValExpected[];  // kValCount * kFrames * kChannels bytes
// Windows at the int16 limits, with features.extract()'s output for each.
extern const uint32_t kEdgeCount;
extern const char kEdgeSamples[];
extern const char kEdgeExpected[];
extern const char* const kEdgeNames[];

}  // namespace tffeat
