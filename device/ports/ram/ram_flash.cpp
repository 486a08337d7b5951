#include "ram_flash.h"

namespace tinyfleet::ram {

RamFlash::RamFlash(const RamArea (&areas)[kFlashAreaCount], uint32_t write_align, uint8_t erased_value)
    : NorFlash(memory_, write_align, erased_value) {
  for (uint8_t i = 0; i < kFlashAreaCount; ++i) {
    if (areas[i].mem == nullptr) continue;
    memory_.attach(i, areas[i].mem);
    define_area(i, {areas[i].size, areas[i].sector_size});
  }
}

}  // namespace tinyfleet::ram
