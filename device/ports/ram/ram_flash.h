// RAM-backed flash port: NOR rules and power-cut injection over caller-owned arrays, no heap. It stands in
// for the flash controller where none is emulated (QEMU's Cortex-M boards) and behaves as the host port's
// FlashEmulator does:
//   - a write must target erased bytes only (FlashNotErased, nothing written) and be aligned to the write
//     granularity (FlashMisaligned); an erase covers whole sectors; out of bounds is FlashError;
//   - cut the power at the i-th write or erase (reads are not counted): Before = the operation does nothing,
//     Torn = a write lands its first half and half the bits of the next byte, an erase erases the first half
//     of its range, After = the operation completes; then every call returns PowerLost until power_on().
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/ports.h"

namespace tinyfleet::ram {

struct RamArea {
  uint8_t* mem = nullptr;  // caller-owned, `size` bytes; nullptr with size 0 = the area does not exist
  uint32_t size = 0;
  uint32_t sector_size = 0;
};

enum class CutMode : uint8_t { Before, Torn, After };

class RamFlash final : public Flash {
 public:
  RamFlash(const RamArea (&areas)[kFlashAreaCount], uint32_t write_align, uint8_t erased_value);

  FlashGeometry geometry(FlashArea area) const override;
  Status read(FlashArea area, uint32_t offset, uint8_t* dst, size_t len) override;
  Status write(FlashArea area, uint32_t offset, const uint8_t* src, size_t len) override;
  Status erase(FlashArea area, uint32_t offset, size_t len) override;

  void erase_all();  // factory-fresh: every byte erased, power on, nothing armed
  void cut_power_at(uint32_t op_index, CutMode mode);  // op_index counts from the current op_count()
  void disarm() { armed_ = false; }
  bool powered() const { return powered_; }
  void power_on() { powered_ = true; }
  void flip_bit(FlashArea area, uint32_t offset, uint8_t bit);
  uint32_t op_count() const { return ops_; }

 private:
  const RamArea* area_of(FlashArea area, uint32_t offset, size_t len) const;
  bool cut_now(CutMode& mode);

  RamArea areas_[kFlashAreaCount];
  uint32_t write_align_;
  uint8_t erased_;
  uint32_t ops_ = 0;
  bool powered_ = true;
  bool armed_ = false;
  uint32_t cut_at_ = 0;
  CutMode cut_mode_ = CutMode::Before;
};

}  // namespace tinyfleet::ram
