// One emulated device for the portable tests: RAM-backed flash (ports/ram, the NOR model) over static arrays,
// the mbedTLS crypto port, and two bundles from tests/vectors as the old and the new image.
#pragma once

#include <cstdint>

#include "mbedtls_crypto.h"
#include "ram_flash.h"
#include "update_driver.h"

namespace tftest {

struct Layout {
  uint32_t sector_size;
  uint32_t bank_sectors;
  uint32_t write_align;
  uint8_t erased;
};

constexpr uint32_t kMaxBankBytes = 16384;
constexpr uint32_t kMaxSectorBytes = 4096;

// A factory-fresh flash with this layout (every byte erased): two banks, one sector per metadata copy,
// two scratch sectors (the agent's progress record). Replaces the previous one.
tinyfleet::ram::RamFlash& fresh_flash(const Layout& layout);
// Keeps what the flash holds now; restored_flash() puts it back (in a new RamFlash: powered, nothing armed,
// operations counted from 0). What a test sets up once and then runs from many times.
void save_flash();
tinyfleet::ram::RamFlash& restored_flash();
tinyfleet::host::MbedtlsCrypto& crypto();

// valid-stm32l4.tfb (old) and valid-device-scoped.tfb (new, differs in prefix and calibration).
const Image& old_image();
const Image& new_image();
// valid-esp32s3.tfb: different firmware and model from both (same thresholds, calibration, vectors).
const Image& other_image();

}  // namespace tftest
