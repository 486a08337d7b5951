#include "ram_flash.h"

#include <cstring>

namespace tinyfleet::ram {

RamFlash::RamFlash(const RamArea (&areas)[kFlashAreaCount], uint32_t write_align, uint8_t erased_value)
    : write_align_(write_align == 0 ? 1 : write_align), erased_(erased_value) {
  for (uint8_t i = 0; i < kFlashAreaCount; ++i) areas_[i] = areas[i];
}

FlashGeometry RamFlash::geometry(FlashArea area) const {
  FlashGeometry g;
  const auto idx = static_cast<uint8_t>(area);
  if (idx >= kFlashAreaCount) return g;
  g.size = areas_[idx].size;
  g.sector_size = areas_[idx].sector_size;
  g.write_align = write_align_;
  g.erased_value = erased_;
  return g;
}

const RamArea* RamFlash::area_of(FlashArea area, uint32_t offset, size_t len) const {
  const auto idx = static_cast<uint8_t>(area);
  if (idx >= kFlashAreaCount || areas_[idx].mem == nullptr) return nullptr;
  if (static_cast<uint64_t>(offset) + len > areas_[idx].size) return nullptr;
  return &areas_[idx];
}

bool RamFlash::cut_now(CutMode& mode) {
  const uint32_t index = ops_++;
  if (!armed_ || index != cut_at_) return false;
  armed_ = false;
  powered_ = false;
  mode = cut_mode_;
  return true;
}

void RamFlash::erase_all() {
  for (const RamArea& a : areas_)
    if (a.mem != nullptr) std::memset(a.mem, erased_, a.size);
  powered_ = true;
  armed_ = false;
}

void RamFlash::cut_power_at(uint32_t op_index, CutMode mode) {
  armed_ = true;
  cut_at_ = ops_ + op_index;
  cut_mode_ = mode;
}

void RamFlash::flip_bit(FlashArea area, uint32_t offset, uint8_t bit) {
  const RamArea* a = area_of(area, offset, 1);
  if (a != nullptr) a->mem[offset] ^= static_cast<uint8_t>(1u << (bit & 7));
}

Status RamFlash::read(FlashArea area, uint32_t offset, uint8_t* dst, size_t len) {
  if (!powered_) return Status::PowerLost;
  const RamArea* a = area_of(area, offset, len);
  if (a == nullptr) return Status::FlashError;
  std::memcpy(dst, a->mem + offset, len);
  return Status::Ok;
}

Status RamFlash::write(FlashArea area, uint32_t offset, const uint8_t* src, size_t len) {
  if (!powered_) return Status::PowerLost;
  const RamArea* a = area_of(area, offset, len);
  if (a == nullptr) return Status::FlashError;
  if (offset % write_align_ != 0 || len % write_align_ != 0) return Status::FlashMisaligned;
  uint8_t* mem = a->mem + offset;
  for (size_t i = 0; i < len; ++i)
    if (mem[i] != erased_) return Status::FlashNotErased;
  CutMode mode;
  if (!cut_now(mode)) {
    std::memcpy(mem, src, len);
    return Status::Ok;
  }
  if (mode == CutMode::After) std::memcpy(mem, src, len);
  if (mode == CutMode::Torn) {
    const size_t landed = len / 2;
    std::memcpy(mem, src, landed);
    if (landed < len) mem[landed] = static_cast<uint8_t>(erased_ ^ ((erased_ ^ src[landed]) & 0x0F));
  }
  return Status::PowerLost;
}

Status RamFlash::erase(FlashArea area, uint32_t offset, size_t len) {
  if (!powered_) return Status::PowerLost;
  const RamArea* a = area_of(area, offset, len);
  if (a == nullptr) return Status::FlashError;
  if (a->sector_size == 0 || offset % a->sector_size != 0 || len % a->sector_size != 0)
    return Status::FlashMisaligned;
  uint8_t* mem = a->mem + offset;
  CutMode mode;
  if (!cut_now(mode)) {
    std::memset(mem, erased_, len);
    return Status::Ok;
  }
  if (mode == CutMode::Torn) std::memset(mem, erased_, len / 2);
  if (mode == CutMode::After) std::memset(mem, erased_, len);
  return Status::PowerLost;
}

}  // namespace tinyfleet::ram
