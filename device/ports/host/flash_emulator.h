// Host port: NOR flash emulated in memory, with fault injection.
//
// NOR rules: a write must target erased bytes only (FlashNotErased, nothing written) and be aligned to the
// write granularity (FlashMisaligned); an erase covers whole sectors; the erased value is 0xFF or 0x00.
// Faults: cut the power at the i-th flash operation (writes and erases are counted, reads are not)
//   - Before: the operation does nothing;
//   - Torn: a write lands a prefix (half by default) and half the bits of the next byte; an erase erases the
//     first part (half by default) of its range;
//   - After: the operation completes, then the power is gone.
// Once the power is cut every operation, reads included, returns PowerLost until power_on() (a reboot).
// Bits can be flipped anywhere to model retention errors. The image can be saved to and loaded from a file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

enum class CutMode : uint8_t { Before, Torn, After };

enum class FlashOpKind : uint8_t { Write, Erase };

struct FlashOp {
  FlashOpKind kind;
  FlashArea area;
  uint32_t offset;
  uint32_t len;
};

class FlashEmulator final : public Flash {
 public:
  explicit FlashEmulator(const FlashLayout& layout);

  FlashGeometry geometry(FlashArea area) const override;
  Status read(FlashArea area, uint32_t offset, uint8_t* dst, size_t len) override;
  Status write(FlashArea area, uint32_t offset, const uint8_t* src, size_t len) override;
  Status erase(FlashArea area, uint32_t offset, size_t len) override;

  // Fault injection.
  // op_index counts from the current op_count(). torn_per_mille: how much of a torn operation lands
  // (a write's prefix, an erase's first part), in thousandths; 500 = half.
  void cut_power_at(uint64_t op_index, CutMode mode, uint32_t torn_per_mille = 500);
  void disarm() { armed_ = false; }
  bool powered() const { return powered_; }
  void power_on() { powered_ = true; }  // reboot: the contents persist
  void flip_bit(FlashArea area, uint32_t offset, uint8_t bit);

  uint64_t op_count() const { return ops_.size(); }
  const std::vector<FlashOp>& ops() const { return ops_; }
  std::vector<uint8_t>& raw(FlashArea area) { return mem_[static_cast<uint8_t>(area)]; }
  const FlashLayout& layout() const { return layout_; }

  bool save(const std::string& path) const;
  bool load(const std::string& path);

 private:
  bool in_bounds(FlashArea area, uint32_t offset, size_t len) const;
  // True if this op must be cut; sets mode. Records the op.
  bool take_op(FlashOpKind kind, FlashArea area, uint32_t offset, size_t len, CutMode& mode);

  FlashLayout layout_;
  std::vector<uint8_t> mem_[kFlashAreaCount];
  std::vector<FlashOp> ops_;
  bool powered_ = true;
  bool armed_ = false;
  uint64_t cut_at_ = 0;
  CutMode cut_mode_ = CutMode::Before;
  uint32_t torn_per_mille_ = 500;
};

}  // namespace tinyfleet::host
