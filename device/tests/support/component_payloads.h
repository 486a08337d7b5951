// Calibration (TFCA) and thresholds (TFTH) component payloads for tests (docs/bundle-format.md).
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "tinyfleet/bytes.h"
#include "tinyfleet/calibration.h"

namespace tftest {

inline std::vector<uint8_t> calibration_payload(const std::vector<tinyfleet::ChannelCalibration>& chans, uint32_t rate) {
  std::vector<uint8_t> p(12 + 16 * chans.size());
  std::memcpy(p.data(), "TFCA", 4);
  tinyfleet::store_u16le(p.data() + 4, 1);
  tinyfleet::store_u16le(p.data() + 6, static_cast<uint16_t>(chans.size()));
  tinyfleet::store_u32le(p.data() + 8, rate);
  for (size_t i = 0; i < chans.size(); ++i) {
    uint8_t* r = p.data() + 12 + 16 * i;
    tinyfleet::store_u32le(r, static_cast<uint32_t>(chans[i].offset));
    tinyfleet::store_u32le(r + 4, static_cast<uint32_t>(chans[i].gain_q16));
    tinyfleet::store_u32le(r + 8, static_cast<uint32_t>(chans[i].baseline_mean_q8));
    tinyfleet::store_u32le(r + 12, chans[i].baseline_std_q8);
  }
  return p;
}

inline std::vector<uint8_t> thresholds_payload(const std::vector<std::pair<int16_t, bool>>& classes) {
  std::vector<uint8_t> p(8 + 20 * classes.size(), 0);
  std::memcpy(p.data(), "TFTH", 4);
  tinyfleet::store_u16le(p.data() + 4, 1);
  tinyfleet::store_u16le(p.data() + 6, static_cast<uint16_t>(classes.size()));
  for (size_t i = 0; i < classes.size(); ++i) {
    uint8_t* r = p.data() + 8 + 20 * i;
    tinyfleet::store_u16le(r, static_cast<uint16_t>(classes[i].first));
    r[2] = classes[i].second ? 1 : 0;
    std::memcpy(r + 4, "class", 5);
  }
  return p;
}

}  // namespace tftest
