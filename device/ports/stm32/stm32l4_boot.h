// The STM32L476 bootloader's steps (it lives in pages 0..15 of BOTH banks, the same code in each, so it
// keeps running when the bank mapping changes under it):
//   1. BootSelector::select() picks the bank from the metadata, verifies its image from flash, counts a
//      trial boot BEFORE running it and reverts a trial whose attempts ran out;
//   2. map the chosen bank at 0x08000000 (SYSCFG_MEMRMP.FB_MODE) and check the firmware component's vector
//      table;
//   3. for a trial boot, start the independent watchdog (it cannot be stopped): a trial image that hangs
//      is reset, and the next select() counts that attempt, so a trial that never confirms is reverted;
//   4. leave the decision for the firmware in the boot handoff (the last 16 bytes of SRAM1) and start the
//      firmware component in place.
// The firmware therefore always runs at the same addresses, whichever bank holds it: it is linked for
// 0x08000000 + 18 pages (36 KiB) + its offset in the bundle, which must be a multiple of 512 (VTOR).
// Option-byte bank swap (BFB2) is not used: the metadata alone decides, as on every other port.
// Steps 1-3 go through a Bus (tested on the host against a controller model); step 4 is the MCU's.
#pragma once

#include <cstdint>

#include "stm32l4_bus.h"
#include "stm32l4_layout.h"
#include "tinyfleet/boot.h"

namespace tinyfleet::stm32l4 {

struct BootConfig {
  uint32_t trial_watchdog_ms = 8000;  // a trial image must refresh the IWDG within this until it confirms
  uint32_t lsi_hz = 32000;            // LSI nominal frequency (RM0351: 32 kHz)
};

// Steps 1-3. On Ok, `vector_table` is the firmware's (CPU address) and the bank is mapped; else nothing is
// started and the mapping is back to bank 1: NoValidImage / NotFound (unprovisioned) / a flash error, or
// InvalidArgument if the selected image's firmware component cannot run in place.
Status prepare_boot(BootSelector& selector, const BootConfig& config, Bus& bus, uint32_t& vector_table);

// Steps 1-4 on the MCU. Returns only if nothing can be started (the status of prepare_boot).
Status boot_selected_image(BootSelector& selector, const BootConfig& config);

// The boot handoff, so the firmware's agent gets the bootloader's decision without selecting again (a
// second select() would count a trial attempt twice and link the verifier into the firmware). Four words
// at kBootHandoffAddr: magic "TFBH", bank | trial << 8 | reverted << 16, the metadata record's seq as the
// bootloader left it, and the CRC-32 of the first three.
void write_boot_handoff(Bus& bus, const BootDecision& decision);
// In the firmware: Ok with the decision (its record loaded from `store`), consumed (the magic is cleared);
// NotFound if there is no intact handoff (cold SRAM, started without the bootloader) or the metadata is no
// longer the record it names; a flash error from `store`.
Status take_boot_decision(Bus& bus, MetadataStore& store, BootDecision& out);

void map_bank_at_zero(Bus& bus, uint8_t bank);
void iwdg_start(Bus& bus, const IwdgSetting& setting);
void iwdg_refresh(Bus& bus);  // the application calls it periodically while the watchdog runs
[[noreturn]] void system_reset();

}  // namespace tinyfleet::stm32l4
