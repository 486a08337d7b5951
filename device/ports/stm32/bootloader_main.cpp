// The STM32L476 bootloader image (pages 0..15 of both banks, runtime/stm32l476rg_boot.ld): selects,
// verifies and starts the image the metadata chooses (stm32l4_boot.h). If nothing can boot it stays in a
// low-power wait with the watchdog (if any) left to reset it; a recovery path (e.g. serial download) is
// the product's to add.
#include "mbedtls_crypto.h"
#include "mbedtls_pool.h"
#include "stm32l4_boot.h"
#include "stm32l4_flash.h"

namespace {
tinyfleet::stm32l4::McuBus g_bus;
tinyfleet::stm32l4::Stm32l4Flash g_flash(g_bus);
tinyfleet::host::MbedtlsCrypto g_crypto;
tinyfleet::BootSelector g_selector(g_flash, g_crypto);
}  // namespace

int main() {
  tinyfleet::cortexm::mbedtls_pool_init();
  tinyfleet::stm32l4::BootConfig config;
  tinyfleet::stm32l4::boot_selected_image(g_selector, config);
  for (;;) asm volatile("wfi");
}
