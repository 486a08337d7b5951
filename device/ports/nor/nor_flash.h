// The one model of NOR flash the test and simulation flashes share (the host emulator, the RAM-backed port
// on QEMU, fleet-sim's flash through tinyfleet._agent): its rules, its power cuts, and a seam to where the
// bytes live (caller memory here, sparse sectors on the host).
//
// Rules: a write must target erased bytes only (FlashNotErased, nothing written) and be aligned to the write
// granularity (FlashMisaligned); an erase covers whole sectors (FlashMisaligned); the erased value is 0xFF or
// 0x00; out of bounds, or an area that does not exist, is FlashError. Refused operations change nothing and
// are not counted.
// Power cuts: cut the power at the i-th operation from now (writes and erases are counted, reads are not):
//   - Before: the operation does nothing;
//   - Torn: a write lands a prefix (half by default) and half the bits of the next byte; an erase erases the
//     first part (half by default) of its range;
//   - After: the operation completes, then the power is gone.
// Once the power is cut every operation, reads included, returns PowerLost until power_on() (a reboot).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/ports.h"

namespace tinyfleet::nor {

enum class CutMode : uint8_t { Before, Torn, After };
enum class OpKind : uint8_t { Write, Erase };

struct AreaGeometry {
  uint32_t size = 0;  // 0: the area does not exist
  uint32_t sector_size = 0;
};

// Where the bytes live. NorFlash checks every range against the area's size before it calls these.
class Storage {
 public:
  virtual void load(uint8_t area, uint32_t offset, uint8_t* dst, size_t len) const = 0;
  virtual void store(uint8_t area, uint32_t offset, const uint8_t* src, size_t len) = 0;
  virtual void fill(uint8_t area, uint32_t offset, size_t len, uint8_t value) = 0;
  // True if every byte of the range is `value`.
  virtual bool holds_only(uint8_t area, uint32_t offset, size_t len, uint8_t value) const = 0;

 protected:
  ~Storage() = default;
};

// Contiguous caller-owned memory per area (nullptr: the area does not exist).
class MemoryStorage final : public Storage {
 public:
  void attach(uint8_t area, uint8_t* mem) { mem_[area] = mem; }
  uint8_t* memory(uint8_t area) const { return mem_[area]; }
  void load(uint8_t area, uint32_t offset, uint8_t* dst, size_t len) const override;
  void store(uint8_t area, uint32_t offset, const uint8_t* src, size_t len) override;
  void fill(uint8_t area, uint32_t offset, size_t len, uint8_t value) override;
  bool holds_only(uint8_t area, uint32_t offset, size_t len, uint8_t value) const override;

 private:
  uint8_t* mem_[kFlashAreaCount] = {};
};

class NorFlash : public Flash {
 public:
  // Every area absent until the front end defines it (define_area).
  NorFlash(Storage& storage, uint32_t write_align, uint8_t erased_value);

  FlashGeometry geometry(FlashArea area) const override;
  Status read(FlashArea area, uint32_t offset, uint8_t* dst, size_t len) override;
  Status write(FlashArea area, uint32_t offset, const uint8_t* src, size_t len) override;
  Status erase(FlashArea area, uint32_t offset, size_t len) override;

  // op_index counts from the current op_count(). torn_per_mille: how much of a torn operation lands (a
  // write's prefix, an erase's first part), in thousandths; 500 = half.
  void cut_power_at(uint64_t op_index, CutMode mode, uint32_t torn_per_mille = 500);
  // The bytes of a `len`-byte operation that land when it is torn at torn_per_mille (0 to len): the tear
  // lengths this model can express are its values for torn_per_mille 0 to 1000.
  static size_t torn_landed(size_t len, uint32_t torn_per_mille) {
    return len * (torn_per_mille > 1000 ? 1000 : torn_per_mille) / 1000;
  }
  void disarm() { armed_ = false; }
  bool armed() const { return armed_; }
  // How many armed cuts have fired (the power went off at the armed operation) since construction.
  uint32_t cuts_fired() const { return cuts_fired_; }
  bool powered() const { return powered_; }
  void power_on() { powered_ = true; }  // reboot: the contents persist
  // Every byte erased, power on, nothing armed (a factory-fresh part).
  void erase_all();
  // A retention error: one bit of a byte flipped (ignored out of bounds).
  void flip_bit(FlashArea area, uint32_t offset, uint8_t bit);
  uint64_t op_count() const { return ops_; }

 protected:
  ~NorFlash() = default;
  void define_area(uint8_t area, AreaGeometry geometry) { areas_[area] = geometry; }
  // Each counted operation, before it runs (the host emulator keeps a log of them).
  virtual void on_operation(OpKind kind, FlashArea area, uint32_t offset, size_t len);

 private:
  bool in_bounds(FlashArea area, uint32_t offset, size_t len) const;
  // Counts the operation; true (and the power is gone, `mode` says how) if it is the one to cut.
  bool cut_now(OpKind kind, FlashArea area, uint32_t offset, size_t len, CutMode& mode);

  Storage& storage_;
  AreaGeometry areas_[kFlashAreaCount] = {};
  uint32_t write_align_;
  uint8_t erased_;
  bool powered_ = true;
  bool armed_ = false;
  CutMode cut_mode_ = CutMode::Before;
  uint32_t torn_per_mille_ = 500;
  uint64_t ops_ = 0;
  uint64_t cut_at_ = 0;
  uint32_t cuts_fired_ = 0;
};

}  // namespace tinyfleet::nor
