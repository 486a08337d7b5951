// fuzz_metadata's input layout, in order: metadata copy 0 (kMetadataRecordLen bytes), copy 1 (same), bank 0
// and bank 1 (kMetadataBankLen bytes each); a short input leaves the rest erased.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "flash_emulator.h"
#include "tinyfleet/metadata.h"

namespace fuzzsupport {

constexpr uint32_t kMetadataBankLen = 2048;

inline tinyfleet::host::FlashLayout metadata_layout() {
  return tinyfleet::host::FlashLayout::dual_bank(256, kMetadataBankLen / 256, 4, 0xFF);
}

inline void load_metadata_input(const uint8_t* data, size_t size, tinyfleet::host::FlashEmulator& flash) {
  using tinyfleet::FlashArea;
  const FlashArea order[] = {FlashArea::Meta0, FlashArea::Meta1, FlashArea::Bank0, FlashArea::Bank1};
  size_t pos = 0;
  for (FlashArea a : order) {
    std::vector<uint8_t>& mem = flash.raw(a);
    size_t n = size - pos < mem.size() ? size - pos : mem.size();
    const bool meta = a == FlashArea::Meta0 || a == FlashArea::Meta1;
    if (meta && n > tinyfleet::kMetadataRecordLen) n = tinyfleet::kMetadataRecordLen;
    std::memcpy(mem.data(), data + pos, n);
    pos += n;
  }
}

}  // namespace fuzzsupport
