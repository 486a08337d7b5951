// Host port: NOR flash emulated in memory, for the host tests and fleet-sim. The rules and the power cuts
// are the NOR model's (ports/nor/nor_flash.h); this front end adds a dual-bank layout, a log of every
// counted operation, direct access to the bytes, and saving the image to and loading it from a file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nor_flash.h"
#include "tinyfleet/ports.h"

namespace tinyfleet::host {

struct AreaLayout {
  uint32_t size = 0;
  uint32_t sector_size = 0;
};

struct FlashLayout {
  AreaLayout areas[kFlashAreaCount];
  uint32_t write_align = 1;
  uint8_t erased_value = 0xFF;

  // Two banks of bank_sectors x sector_size, two one-sector metadata copies, and a scratch area.
  static FlashLayout dual_bank(uint32_t sector_size, uint32_t bank_sectors, uint32_t write_align,
                               uint8_t erased_value, uint32_t scratch_sectors = 1);
};

using CutMode = nor::CutMode;
using FlashOpKind = nor::OpKind;

struct FlashOp {
  FlashOpKind kind;
  FlashArea area;
  uint32_t offset;
  uint32_t len;
};

namespace detail {
// The emulator's bytes, built before the NOR model that refers to them.
struct EmulatorMemory {
  explicit EmulatorMemory(const FlashLayout& layout);
  std::vector<uint8_t> mem[kFlashAreaCount];
  nor::MemoryStorage storage;
};
}  // namespace detail

class FlashEmulator final : private detail::EmulatorMemory, public nor::NorFlash {
 public:
  explicit FlashEmulator(const FlashLayout& layout);

  const std::vector<FlashOp>& ops() const { return ops_; }
  std::vector<uint8_t>& raw(FlashArea area) { return mem[static_cast<uint8_t>(area)]; }
  const FlashLayout& layout() const { return layout_; }

  bool save(const std::string& path) const;
  bool load(const std::string& path);

 private:
  void on_operation(FlashOpKind kind, FlashArea area, uint32_t offset, size_t len) override;

  FlashLayout layout_;
  std::vector<FlashOp> ops_;
};

}  // namespace tinyfleet::host
