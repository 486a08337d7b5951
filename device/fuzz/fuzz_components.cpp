// libFuzzer target: the calibration (TFCA) and thresholds (TFTH) component parsers (calibration.h) on
// arbitrary bytes, and what the inference path does with what they accept. Besides memory safety: an
// accepted payload re-encodes (tests/support/component_payloads.h) to the same bytes, class labels aside;
// calibrate() is monotonic in the raw sample and maps the offset to 0; the sample ring returns the frames
// pushed last, calibrated; decide() picks the largest qualifying score, lowest index on ties, or none.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "support/component_payloads.h"
#include "support/require.h"
#include "tinyfleet/bytes.h"
#include "tinyfleet/calibration.h"

using namespace tinyfleet;
using fuzzsupport::require;

namespace {

void check_calibration(const Calibration& cal, const uint8_t* data, size_t size) {
  std::vector<ChannelCalibration> chans(cal.channels, cal.channels + cal.channel_count);
  const std::vector<uint8_t> again = tftest::calibration_payload(chans, cal.sample_rate_hz);
  require(again.size() == size && std::memcmp(again.data(), data, size) == 0, "a calibration re-encodes to its bytes");
  for (uint16_t c = 0; c < cal.channel_count; ++c) {
    const ChannelCalibration& ch = cal.channels[c];
    require(calibrate(ch, ch.offset) == 0, "the offset calibrates to 0");
    int16_t prev = calibrate(ch, -32768);
    for (int32_t raw = -32768 + 4099; raw <= 32767; raw += 4099) {
      const int16_t v = calibrate(ch, raw);
      require(v >= prev, "calibrate() is monotonic in the raw sample");
      prev = v;
    }
  }
  // A ring of 3 frames; the input's bytes as raw samples, 5 frames pushed.
  int16_t storage[3 * kMaxChannels];
  SampleRing ring;
  ring.attach(storage, 3u * cal.channel_count);
  require(ring.reset(cal) == Status::Ok && ring.capacity_frames() == 3, "the ring holds 3 frames");
  int16_t raw[5][kMaxChannels], want[5][kMaxChannels];
  for (int f = 0; f < 5; ++f) {
    for (uint16_t c = 0; c < cal.channel_count; ++c) {
      const size_t at = (static_cast<size_t>(f) * cal.channel_count + c) * 2 % (size - 1);
      raw[f][c] = static_cast<int16_t>(load_u16le(data + at));
      want[f][c] = calibrate(cal.channels[c], raw[f][c]);
    }
    ring.push(raw[f]);
  }
  int16_t latest[3 * kMaxChannels];
  require(ring.frames() == 3 && ring.latest(latest, 3) && !ring.latest(latest, 4), "the ring keeps its last 3 frames");
  for (int f = 0; f < 3; ++f) {
    require(std::memcmp(latest + f * cal.channel_count, want[f + 2], 2u * cal.channel_count) == 0,
            "the ring returns the last frames, calibrated, oldest first");
  }
}

void check_thresholds(const Thresholds& t, const uint8_t* data, size_t size) {
  std::vector<std::pair<int16_t, bool>> classes;
  for (uint16_t i = 0; i < t.class_count; ++i) classes.emplace_back(t.classes[i].min_score, t.classes[i].alarm);
  std::vector<uint8_t> again = tftest::thresholds_payload(classes);
  require(again.size() == size, "a thresholds record re-encodes to its length");
  for (uint16_t i = 0; i < t.class_count; ++i) std::memcpy(again.data() + 8 + 20 * i + 4, data + 8 + 20 * i + 4, 16);
  require(std::memcmp(again.data(), data, size) == 0, "a thresholds record re-encodes to its bytes (labels aside)");
  // The input's last bytes as a model output of up to 80 scores (more than the classes, sometimes).
  const size_t n = size < 80 ? size : 80;
  const uint8_t* out = data + size - n;
  for (uint8_t dtype = 1; dtype <= 2; ++dtype) {
    const Decision d = decide(t, out, n, dtype);
    int best = -1;
    int best_score = 0;
    for (size_t i = 0; i < n && i < t.class_count; ++i) {
      const int score = dtype == 2 ? out[i] - 128 : static_cast<int8_t>(out[i]);
      if (score >= t.classes[i].min_score && (best < 0 || score > best_score)) {
        best = static_cast<int>(i);
        best_score = score;
      }
    }
    require(d.winner == best, "decide() picks the largest qualifying score, lowest index on ties");
    require(d.alarm == (best >= 0 && t.classes[best].alarm), "the decision's alarm is its class's");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Calibration cal;
  if (parse_calibration(data, size, cal) == Status::Ok) check_calibration(cal, data, size);
  Thresholds t;
  if (parse_thresholds(data, size, t) == Status::Ok) check_thresholds(t, data, size);
  return 0;
}
