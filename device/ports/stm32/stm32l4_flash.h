// Flash port for the STM32L476 at register level (no HAL): double-word programming and page erase on the
// areas of stm32l4_layout.h, through a Bus (stm32l4_bus.h: the MCU's registers, or a controller model in
// the host tests). Runs from flash: a write or erase in the bank the CPU executes from stalls the CPU until
// the operation ends (RM0351 3.3.5), which is correct, only slower.
//
// Power cuts: a double word torn by a power cut may hold bits that fail its ECC; reading it raises the
// ECC-double-error NMI (FLASH_ECCR.ECCD). The core never trusts such bytes (every image and record is
// checked by hash or CRC), but the application's NMI handler must clear ECCD and return for the read to
// complete: see docs/ports.md.
#pragma once

#include "stm32l4_bus.h"
#include "stm32l4_layout.h"
#include "tinyfleet/ports.h"

namespace tinyfleet::stm32l4 {

class Stm32l4Flash final : public Flash {
 public:
  explicit Stm32l4Flash(Bus& bus) : bus_(bus) {}

  FlashGeometry geometry(FlashArea area) const override { return area_geometry(area); }
  Status read(FlashArea area, uint32_t offset, uint8_t* dst, size_t len) override;
  Status write(FlashArea area, uint32_t offset, const uint8_t* src, size_t len) override;
  Status erase(FlashArea area, uint32_t offset, size_t len) override;

  // Current bank mapping (SYSCFG_MEMRMP.FB_MODE).
  bool fb_mode();

 private:
  bool wait_ready();
  bool unlock();
  void lock();
  void clear_flags();
  void flush_data_cache();
  uint32_t address(const Location& at);
  Status program_double_word(const Location& at, const uint8_t* src);
  Status erase_page(uint8_t bank, uint16_t page);

  Bus& bus_;
};

}  // namespace tinyfleet::stm32l4
