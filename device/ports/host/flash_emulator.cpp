#include "flash_emulator.h"

#include <cstdio>
#include <cstring>

namespace tinyfleet::host {

FlashLayout FlashLayout::dual_bank(uint32_t sector_size, uint32_t bank_sectors, uint32_t write_align,
                                   uint8_t erased_value, uint32_t scratch_sectors) {
  FlashLayout l;
  l.areas[0] = {sector_size * bank_sectors, sector_size};
  l.areas[1] = {sector_size * bank_sectors, sector_size};
  l.areas[2] = {sector_size, sector_size};
  l.areas[3] = {sector_size, sector_size};
  l.areas[4] = {sector_size * scratch_sectors, sector_size};
  l.write_align = write_align;
  l.erased_value = erased_value;
  return l;
}

FlashEmulator::FlashEmulator(const FlashLayout& layout) : layout_(layout) {
  for (uint8_t i = 0; i < kFlashAreaCount; ++i) mem_[i].assign(layout.areas[i].size, layout.erased_value);
}

FlashGeometry FlashEmulator::geometry(FlashArea area) const {
  const AreaLayout& a = layout_.areas[static_cast<uint8_t>(area)];
  FlashGeometry g;
  g.size = a.size;
  g.sector_size = a.sector_size;
  g.write_align = layout_.write_align;
  g.erased_value = layout_.erased_value;
  return g;
}

bool FlashEmulator::in_bounds(FlashArea area, uint32_t offset, size_t len) const {
  auto idx = static_cast<uint8_t>(area);
  if (idx >= kFlashAreaCount) return false;
  uint64_t end = static_cast<uint64_t>(offset) + len;
  return end <= mem_[idx].size();
}

void FlashEmulator::cut_power_at(uint64_t op_index, CutMode mode, uint32_t torn_per_mille) {
  armed_ = true;
  cut_at_ = op_count() + op_index;
  cut_mode_ = mode;
  torn_per_mille_ = torn_per_mille > 1000 ? 1000 : torn_per_mille;
}

bool FlashEmulator::take_op(FlashOpKind kind, FlashArea area, uint32_t offset, size_t len, CutMode& mode) {
  uint64_t index = ops_.size();
  ops_.push_back({kind, area, offset, static_cast<uint32_t>(len)});
  if (armed_ && index == cut_at_) {
    armed_ = false;
    mode = cut_mode_;
    return true;
  }
  return false;
}

Status FlashEmulator::read(FlashArea area, uint32_t offset, uint8_t* dst, size_t len) {
  if (!powered_) return Status::PowerLost;
  if (!in_bounds(area, offset, len)) return Status::FlashError;
  std::memcpy(dst, mem_[static_cast<uint8_t>(area)].data() + offset, len);
  return Status::Ok;
}

Status FlashEmulator::write(FlashArea area, uint32_t offset, const uint8_t* src, size_t len) {
  if (!powered_) return Status::PowerLost;
  if (!in_bounds(area, offset, len)) return Status::FlashError;
  if (offset % layout_.write_align != 0 || len % layout_.write_align != 0) return Status::FlashMisaligned;
  uint8_t* mem = mem_[static_cast<uint8_t>(area)].data() + offset;
  for (size_t i = 0; i < len; ++i)
    if (mem[i] != layout_.erased_value) return Status::FlashNotErased;
  CutMode mode;
  if (take_op(FlashOpKind::Write, area, offset, len, mode)) {
    powered_ = false;
    if (mode == CutMode::Before) return Status::PowerLost;
    if (mode == CutMode::Torn) {
      size_t landed = len * torn_per_mille_ / 1000;
      std::memcpy(mem, src, landed);
      if (landed < len) {  // the next byte is half programmed: half of its differing bits changed
        uint8_t e = layout_.erased_value;
        mem[landed] = static_cast<uint8_t>(e ^ ((e ^ src[landed]) & 0x0F));
      }
      return Status::PowerLost;
    }
    std::memcpy(mem, src, len);
    return Status::PowerLost;
  }
  std::memcpy(mem, src, len);
  return Status::Ok;
}

Status FlashEmulator::erase(FlashArea area, uint32_t offset, size_t len) {
  if (!powered_) return Status::PowerLost;
  if (!in_bounds(area, offset, len)) return Status::FlashError;
  uint32_t sector = layout_.areas[static_cast<uint8_t>(area)].sector_size;
  if (sector == 0 || offset % sector != 0 || len % sector != 0) return Status::FlashMisaligned;
  uint8_t* mem = mem_[static_cast<uint8_t>(area)].data() + offset;
  CutMode mode;
  if (take_op(FlashOpKind::Erase, area, offset, len, mode)) {
    powered_ = false;
    if (mode == CutMode::Torn) std::memset(mem, layout_.erased_value, len * torn_per_mille_ / 1000);
    if (mode == CutMode::After) std::memset(mem, layout_.erased_value, len);
    return Status::PowerLost;
  }
  std::memset(mem, layout_.erased_value, len);
  return Status::Ok;
}

void FlashEmulator::flip_bit(FlashArea area, uint32_t offset, uint8_t bit) {
  mem_[static_cast<uint8_t>(area)].at(offset) ^= static_cast<uint8_t>(1u << (bit & 7));
}

bool FlashEmulator::save(const std::string& path) const {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  bool ok = true;
  for (const auto& m : mem_) ok = ok && std::fwrite(m.data(), 1, m.size(), f) == m.size();
  return std::fclose(f) == 0 && ok;
}

bool FlashEmulator::load(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  bool ok = true;
  for (auto& m : mem_) ok = ok && std::fread(m.data(), 1, m.size(), f) == m.size();
  ok = ok && std::fgetc(f) == EOF;
  std::fclose(f);
  return ok;
}

}  // namespace tinyfleet::host
