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

namespace detail {

EmulatorMemory::EmulatorMemory(const FlashLayout& layout) {
  for (uint8_t i = 0; i < kFlashAreaCount; ++i) {
    mem[i].assign(layout.areas[i].size, layout.erased_value);
    storage.attach(i, mem[i].data());
  }
}

}  // namespace detail

FlashEmulator::FlashEmulator(const FlashLayout& layout)
    : EmulatorMemory(layout), NorFlash(storage, layout.write_align, layout.erased_value), layout_(layout) {
  for (uint8_t i = 0; i < kFlashAreaCount; ++i) define_area(i, {layout.areas[i].size, layout.areas[i].sector_size});
}

void FlashEmulator::on_operation(FlashOpKind kind, FlashArea area, uint32_t offset, size_t len) {
  ops_.push_back({kind, area, offset, static_cast<uint32_t>(len)});
}

bool FlashEmulator::save(const std::string& path) const {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  bool ok = true;
  for (const auto& m : mem) ok = ok && std::fwrite(m.data(), 1, m.size(), f) == m.size();
  return std::fclose(f) == 0 && ok;
}

bool FlashEmulator::load(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  bool ok = true;
  for (auto& m : mem) ok = ok && std::fread(m.data(), 1, m.size(), f) == m.size();
  ok = ok && std::fgetc(f) == EOF;
  std::fclose(f);
  return ok;
}

}  // namespace tinyfleet::host
