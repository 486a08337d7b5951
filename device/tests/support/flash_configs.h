// The 24 flash configurations the power-cut tests run on (the boot-level matrix of portable/test_powercut.cpp
// at full scale): sector size x write granularity x erased value.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "flash_emulator.h"
#include "nor_flash.h"
#include "tinyfleet/progress.h"

namespace tftest {

struct FlashConfig {
  uint32_t sector_size;
  uint32_t write_align;
  uint8_t erased;
  std::string name() const {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%u-byte sectors, %u-byte writes, erased 0x%02X", sector_size, write_align,
                  erased);
    return buf;
  }
};

inline std::vector<FlashConfig> all_flash_configs() {
  std::vector<FlashConfig> out;
  for (uint32_t sector : {256u, 1024u, 4096u})
    for (uint32_t align : {1u, 4u, 8u, 16u})
      for (uint8_t erased : {uint8_t{0xFF}, uint8_t{0x00}}) out.push_back({sector, align, erased});
  return out;
}

// A device of this configuration for the agent-level tests: 16 KiB banks, one sector per metadata copy, a
// Scratch area with room for two progress-record copies.
inline tinyfleet::host::FlashLayout agent_layout(const FlashConfig& c) {
  const uint32_t copy_sectors =
      (static_cast<uint32_t>(tinyfleet::kProgressRecordLen) + c.write_align + c.sector_size - 1) / c.sector_size;
  return tinyfleet::host::FlashLayout::dual_bank(c.sector_size, 16384 / c.sector_size, c.write_align, c.erased,
                                                 2 * copy_sectors);
}

// Every tear the NOR model can express for an operation of `len` bytes: one torn_per_mille value per
// distinct number of bytes landed (nor::NorFlash::torn_landed), smallest first.
inline std::vector<uint32_t> every_tear(size_t len) {
  std::vector<uint32_t> out;
  for (uint32_t pm = 0; pm <= 1000; ++pm) {
    if (out.empty() || tinyfleet::nor::NorFlash::torn_landed(len, pm) !=
                           tinyfleet::nor::NorFlash::torn_landed(len, out.back()))
      out.push_back(pm);
  }
  return out;
}

}  // namespace tftest
