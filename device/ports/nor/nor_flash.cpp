#include "nor_flash.h"

#include <cstring>

namespace tinyfleet::nor {

void MemoryStorage::load(uint8_t area, uint32_t offset, uint8_t* dst, size_t len) const {
  std::memcpy(dst, mem_[area] + offset, len);
}

void MemoryStorage::store(uint8_t area, uint32_t offset, const uint8_t* src, size_t len) {
  std::memcpy(mem_[area] + offset, src, len);
}

void MemoryStorage::fill(uint8_t area, uint32_t offset, size_t len, uint8_t value) {
  std::memset(mem_[area] + offset, value, len);
}

bool MemoryStorage::holds_only(uint8_t area, uint32_t offset, size_t len, uint8_t value) const {
  const uint8_t* mem = mem_[area] + offset;
  for (size_t i = 0; i < len; ++i) {
    if (mem[i] != value) return false;
  }
  return true;
}

NorFlash::NorFlash(Storage& storage, uint32_t write_align, uint8_t erased_value)
    : storage_(storage), write_align_(write_align == 0 ? 1 : write_align), erased_(erased_value) {}

FlashGeometry NorFlash::geometry(FlashArea area) const {
  FlashGeometry g;
  const auto idx = static_cast<uint8_t>(area);
  if (idx >= kFlashAreaCount) return g;
  g.size = areas_[idx].size;
  g.sector_size = areas_[idx].sector_size;
  g.write_align = write_align_;
  g.erased_value = erased_;
  return g;
}

bool NorFlash::in_bounds(FlashArea area, uint32_t offset, size_t len) const {
  const auto idx = static_cast<uint8_t>(area);
  if (idx >= kFlashAreaCount || areas_[idx].size == 0) return false;
  return static_cast<uint64_t>(offset) + len <= areas_[idx].size;
}

void NorFlash::cut_power_at(uint64_t op_index, CutMode mode, uint32_t torn_per_mille) {
  armed_ = true;
  cut_at_ = ops_ + op_index;
  cut_mode_ = mode;
  torn_per_mille_ = torn_per_mille > 1000 ? 1000 : torn_per_mille;
}

void NorFlash::on_operation(OpKind, FlashArea, uint32_t, size_t) {}

bool NorFlash::cut_now(OpKind kind, FlashArea area, uint32_t offset, size_t len, CutMode& mode) {
  on_operation(kind, area, offset, len);
  const uint64_t index = ops_++;
  if (!armed_ || index != cut_at_) return false;
  armed_ = false;
  powered_ = false;
  ++cuts_fired_;
  mode = cut_mode_;
  return true;
}

void NorFlash::erase_all() {
  for (uint8_t i = 0; i < kFlashAreaCount; ++i) {
    if (areas_[i].size != 0) storage_.fill(i, 0, areas_[i].size, erased_);
  }
  powered_ = true;
  armed_ = false;
}

void NorFlash::flip_bit(FlashArea area, uint32_t offset, uint8_t bit) {
  if (!in_bounds(area, offset, 1)) return;
  const auto idx = static_cast<uint8_t>(area);
  uint8_t b;
  storage_.load(idx, offset, &b, 1);
  b ^= static_cast<uint8_t>(1u << (bit & 7));
  storage_.store(idx, offset, &b, 1);
}

Status NorFlash::read(FlashArea area, uint32_t offset, uint8_t* dst, size_t len) {
  if (!powered_) return Status::PowerLost;
  if (!in_bounds(area, offset, len)) return Status::FlashError;
  storage_.load(static_cast<uint8_t>(area), offset, dst, len);
  return Status::Ok;
}

Status NorFlash::write(FlashArea area, uint32_t offset, const uint8_t* src, size_t len) {
  if (!powered_) return Status::PowerLost;
  if (!in_bounds(area, offset, len)) return Status::FlashError;
  if (offset % write_align_ != 0 || len % write_align_ != 0) return Status::FlashMisaligned;
  const auto idx = static_cast<uint8_t>(area);
  if (!storage_.holds_only(idx, offset, len, erased_)) return Status::FlashNotErased;
  CutMode mode;
  if (!cut_now(OpKind::Write, area, offset, len, mode)) {
    storage_.store(idx, offset, src, len);
    return Status::Ok;
  }
  if (mode == CutMode::After) storage_.store(idx, offset, src, len);
  if (mode == CutMode::Torn) {
    const size_t landed = torn_landed(len, torn_per_mille_);
    storage_.store(idx, offset, src, landed);
    if (landed < len) {  // the next byte is half programmed: half of its differing bits changed
      const uint8_t half = static_cast<uint8_t>(erased_ ^ ((erased_ ^ src[landed]) & 0x0F));
      storage_.store(idx, static_cast<uint32_t>(offset + landed), &half, 1);
    }
  }
  return Status::PowerLost;
}

Status NorFlash::erase(FlashArea area, uint32_t offset, size_t len) {
  if (!powered_) return Status::PowerLost;
  if (!in_bounds(area, offset, len)) return Status::FlashError;
  const uint32_t sector = areas_[static_cast<uint8_t>(area)].sector_size;
  if (sector == 0 || offset % sector != 0 || len % sector != 0) return Status::FlashMisaligned;
  const auto idx = static_cast<uint8_t>(area);
  CutMode mode;
  if (!cut_now(OpKind::Erase, area, offset, len, mode)) {
    storage_.fill(idx, offset, len, erased_);
    return Status::Ok;
  }
  if (mode == CutMode::Torn) storage_.fill(idx, offset, torn_landed(len, torn_per_mille_), erased_);
  if (mode == CutMode::After) storage_.fill(idx, offset, len, erased_);
  return Status::PowerLost;
}

}  // namespace tinyfleet::nor
