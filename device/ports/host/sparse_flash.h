// Host port: NOR flash whose erased sectors cost no memory, for fleet-sim's thousands of devices (through
// tinyfleet._agent). The rules and the power cuts are the NOR model's (ports/nor/nor_flash.h); only where
// the bytes live differs from FlashEmulator: a sector is allocated when a byte of it is programmed and
// freed when it is erased whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "flash_emulator.h"
#include "nor_flash.h"

namespace tinyfleet::host {

class SparseStorage final : public nor::Storage {
 public:
  SparseStorage(const FlashLayout& layout);
  void load(uint8_t area, uint32_t offset, uint8_t* dst, size_t len) const override;
  void store(uint8_t area, uint32_t offset, const uint8_t* src, size_t len) override;
  void fill(uint8_t area, uint32_t offset, size_t len, uint8_t value) override;
  bool holds_only(uint8_t area, uint32_t offset, size_t len, uint8_t value) const override;
  // Bytes of the sectors allocated now.
  size_t bytes_used() const;

 private:
  using Sectors = std::unordered_map<uint32_t, std::vector<uint8_t>>;
  // Calls f(sector index, offset within it, length) for each sector-sized piece of [offset, offset + len).
  template <typename F>
  void pieces(uint8_t area, uint32_t offset, size_t len, F&& f) const;

  uint32_t sector_[kFlashAreaCount];
  uint8_t erased_;
  Sectors sectors_[kFlashAreaCount];
};

namespace detail {
struct SparseMemory {
  explicit SparseMemory(const FlashLayout& layout) : storage(layout) {}
  SparseStorage storage;
};
}  // namespace detail

class SparseFlash final : private detail::SparseMemory, public nor::NorFlash {
 public:
  explicit SparseFlash(const FlashLayout& layout);
  ~SparseFlash();
  // Out of line, as the destructor: the vtable stays in sparse_flash.cpp, built without RTTI like the rest
  // of the port, also when an RTTI user (the nanobind module) holds a SparseFlash.
  FlashGeometry geometry(FlashArea area) const override;
  size_t bytes_used() const { return storage.bytes_used(); }
};

}  // namespace tinyfleet::host
