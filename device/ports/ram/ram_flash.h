// RAM-backed flash port: the NOR model (ports/nor/nor_flash.h: rules, power cuts) over caller-owned arrays,
// no heap. It stands in for the flash controller where none is emulated (QEMU's Cortex-M boards).
#pragma once

#include <cstddef>
#include <cstdint>

#include "nor_flash.h"

namespace tinyfleet::ram {

struct RamArea {
  uint8_t* mem = nullptr;  // caller-owned, `size` bytes; nullptr with size 0 = the area does not exist
  uint32_t size = 0;
  uint32_t sector_size = 0;
};

using CutMode = nor::CutMode;

class RamFlash final : public nor::NorFlash {
 public:
  RamFlash(const RamArea (&areas)[kFlashAreaCount], uint32_t write_align, uint8_t erased_value);

 private:
  nor::MemoryStorage memory_;  // the base holds a reference to it and uses it only after construction
};

}  // namespace tinyfleet::ram
