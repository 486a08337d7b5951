// fuzz_progress's input layout: the first kProgressRecordLen bytes are copy 0 of the progress record, the
// next kProgressRecordLen copy 1 (a short input leaves the rest of the Scratch area erased).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "flash_emulator.h"
#include "tinyfleet/progress.h"

namespace fuzzsupport {

// Two 512-byte Scratch sectors: one per copy (the store puts copy 1 at half the area).
constexpr uint32_t kProgressCopySpan = 512;
static_assert(tinyfleet::kProgressRecordLen <= kProgressCopySpan, "a copy fits its sector");

inline tinyfleet::host::FlashLayout progress_layout() {
  return tinyfleet::host::FlashLayout::dual_bank(kProgressCopySpan, 2, 8, 0xFF, 2);
}

inline void load_progress_input(const uint8_t* data, size_t size, tinyfleet::host::FlashEmulator& flash) {
  std::vector<uint8_t>& scratch = flash.raw(tinyfleet::FlashArea::Scratch);
  for (size_t c = 0; c < 2; ++c) {
    const size_t from = c * tinyfleet::kProgressRecordLen;
    if (from >= size) break;
    const size_t n = size - from < tinyfleet::kProgressRecordLen ? size - from : tinyfleet::kProgressRecordLen;
    std::memcpy(scratch.data() + c * kProgressCopySpan, data + from, n);
  }
}

}  // namespace fuzzsupport
