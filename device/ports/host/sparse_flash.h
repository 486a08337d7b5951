// Host port: NOR flash whose erased sectors cost no memory, for fleet-sim's thousands of devices (through
// tinyfleet._agent). The rules and the power cuts are the NOR model's (ports/nor/nor_flash.h); only where
// the bytes live differs from FlashEmulator: a sector is allocated when a byte of it is programmed and
// freed when it is erased whole.
//
// Sectors are immutable and shared by content: every sector a write or fill leaves behind is looked up in
// one process-wide pool (SectorPool) and, when an equal sector is already held anywhere, shares its bytes.
// Devices that install the same bundle at the same offsets therefore hold its sectors once between them; a
// change copies the sector (copy on write). A pooled sector leaves the pool with its last holder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "flash_emulator.h"
#include "nor_flash.h"

namespace tinyfleet::host {

using SectorBytes = std::shared_ptr<const std::vector<uint8_t>>;

// The distinct sector contents held by every SparseStorage of the process. Not thread-safe: fleet-sim
// drives its flashes from one thread (the Python binding holds the GIL).
class SectorPool {
 public:
  static SectorPool& instance();
  // The pooled sector equal to `bytes` (pooled now if none is).
  SectorBytes intern(std::vector<uint8_t>&& bytes);
  // Distinct sectors held now, and their bytes.
  size_t sectors() const { return count_; }
  size_t bytes() const { return bytes_; }

 private:
  struct Entry {
    const std::vector<uint8_t>* raw;
    std::weak_ptr<const std::vector<uint8_t>> weak;
  };
  void forget(size_t hash, const std::vector<uint8_t>* raw);
  std::unordered_multimap<size_t, Entry> map_;
  size_t count_ = 0;
  size_t bytes_ = 0;
};

class SparseStorage final : public nor::Storage {
 public:
  SparseStorage(const FlashLayout& layout);
  void load(uint8_t area, uint32_t offset, uint8_t* dst, size_t len) const override;
  void store(uint8_t area, uint32_t offset, const uint8_t* src, size_t len) override;
  void fill(uint8_t area, uint32_t offset, size_t len, uint8_t value) override;
  bool holds_only(uint8_t area, uint32_t offset, size_t len, uint8_t value) const override;
  // Bytes of the sectors allocated now (shared ones counted in full: what this flash holds, not what it costs).
  size_t bytes_used() const;

 private:
  using Sectors = std::unordered_map<uint32_t, SectorBytes>;
  // Calls f(sector index, offset within it, length) for each sector-sized piece of [offset, offset + len).
  template <typename F>
  void pieces(uint8_t area, uint32_t offset, size_t len, F&& f) const;
  // A private copy of the sector (erased if absent), changed by `f`, then put back through the pool.
  template <typename F>
  void change(uint8_t area, uint32_t index, F&& f);

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
