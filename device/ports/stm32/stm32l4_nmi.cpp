// NMI handler for STM32L476 images (link this object into the image: it replaces the runtime's weak one).
// The flash raises an NMI on an ECC double error (FLASH_ECCR.ECCD) when the CPU reads a double word whose
// programming a power cut tore. The read completes with wrong bits; the core rejects such data by hash or
// CRC (a torn bank is re-erased, a torn metadata copy ignored), so the handler clears the flag, counts it
// and returns. Any other NMI (clock security system, SRAM parity) resets the device.
#include "stm32l4_boot.h"
#include "stm32l4_regs.h"

namespace tinyfleet::stm32l4 {
volatile uint32_t g_flash_ecc_double_errors = 0;
}

extern "C" void NMI_Handler() {
  using namespace tinyfleet::stm32l4;
  volatile uint32_t& eccr = reg::at(reg::kFlash + 0x18);
  constexpr uint32_t kEccd = 1u << 31;
  if ((eccr & kEccd) != 0) {
    eccr = kEccd;  // rc_w1
    g_flash_ecc_double_errors = g_flash_ecc_double_errors + 1;
    return;
  }
  system_reset();
}
