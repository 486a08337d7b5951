#include "stm32l4_layout.h"

namespace tinyfleet::stm32l4 {
namespace {

constexpr uint32_t kSram1Base = 0x20000000u;
constexpr uint32_t kSram1Size = 96 * 1024;
constexpr uint32_t kVectorAlign = 512;

uint32_t area_size(FlashArea area) {
  switch (area) {
    case FlashArea::Bank0:
    case FlashArea::Bank1: return kImageSize;
    case FlashArea::Meta0:
    case FlashArea::Meta1: return kPageSize;
    case FlashArea::Scratch: return 2 * kPageSize;
  }
  return 0;
}

bool in_area(FlashArea area, uint32_t offset, size_t len) {
  const uint32_t size = area_size(area);
  return size != 0 && offset <= size && len <= size - offset;
}

}  // namespace

FlashGeometry area_geometry(FlashArea area) {
  FlashGeometry g;
  g.size = area_size(area);
  g.sector_size = g.size == 0 ? 0 : kPageSize;
  g.write_align = kDoubleWord;
  g.erased_value = kErased;
  return g;
}

bool locate(FlashArea area, uint32_t offset, Location& out) {
  if (!in_area(area, offset, 1)) return false;
  const uint32_t page_in_area = offset / kPageSize;
  out.page_offset = offset % kPageSize;
  out.contiguous = kPageSize - out.page_offset;
  switch (area) {
    case FlashArea::Bank0:
    case FlashArea::Bank1:
      out.bank = area == FlashArea::Bank0 ? 0 : 1;
      out.page = static_cast<uint16_t>(kImageFirstPage + page_in_area);
      out.contiguous = kImageSize - offset;  // the image pages of one bank are contiguous
      return true;
    case FlashArea::Meta0:
    case FlashArea::Meta1:
      out.bank = area == FlashArea::Meta0 ? 0 : 1;
      out.page = kMetaPage;
      return true;
    case FlashArea::Scratch:
      out.bank = static_cast<uint8_t>(page_in_area);
      out.page = kScratchPage;
      return true;
  }
  return false;
}

Status check_write(FlashArea area, uint32_t offset, size_t len) {
  if (!in_area(area, offset, len)) return Status::FlashError;
  if (offset % kDoubleWord != 0 || len % kDoubleWord != 0) return Status::FlashMisaligned;
  return Status::Ok;
}

Status check_erase(FlashArea area, uint32_t offset, size_t len) {
  if (!in_area(area, offset, len)) return Status::FlashError;
  if (offset % kPageSize != 0 || len % kPageSize != 0) return Status::FlashMisaligned;
  return Status::Ok;
}

bool double_word_erased(const uint8_t* p) {
  for (uint32_t i = 0; i < kDoubleWord; ++i)
    if (p[i] != kErased) return false;
  return true;
}

void double_word_split(const uint8_t* p, uint32_t& low, uint32_t& high) {
  low = static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
        static_cast<uint32_t>(p[3]) << 24;
  high = static_cast<uint32_t>(p[4]) | static_cast<uint32_t>(p[5]) << 8 | static_cast<uint32_t>(p[6]) << 16 |
         static_cast<uint32_t>(p[7]) << 24;
}

bool iwdg_setting(uint32_t timeout_ms, uint32_t lsi_hz, IwdgSetting& out) {
  if (timeout_ms == 0 || lsi_hz == 0) return false;
  for (uint8_t pr = 0; pr <= 6; ++pr) {
    const uint64_t divider = 4ull << pr;
    // Watchdog ticks needed: ceil(timeout_ms * lsi_hz / (1000 * divider)); the counter runs RLR + 1 ticks.
    const uint64_t ticks = (static_cast<uint64_t>(timeout_ms) * lsi_hz + 1000 * divider - 1) / (1000 * divider);
    if (ticks == 0 || ticks > 4096) continue;
    out.pr = pr;
    out.rlr = static_cast<uint16_t>(ticks - 1);
    out.timeout_ms = static_cast<uint32_t>((ticks * divider * 1000) / lsi_hz);
    return true;
  }
  return false;
}

uint32_t firmware_vector_table(uint32_t component_offset, uint32_t component_len, uint32_t initial_sp,
                               uint32_t reset_handler) {
  const uint32_t table = kFlashBase + kImageFirstPage * kPageSize + component_offset;
  if (component_offset % kVectorAlign != 0 || component_len < 8) return 0;
  if (component_offset > kImageSize || component_len > kImageSize - component_offset) return 0;
  if (initial_sp < kSram1Base || initial_sp > kSram1Base + kSram1Size || initial_sp % 8 != 0) return 0;
  if ((reset_handler & 1u) == 0) return 0;  // must be a Thumb address
  const uint32_t entry = reset_handler & ~1u;
  if (entry < table + 8 || entry >= table + component_len) return 0;
  return table;
}

}  // namespace tinyfleet::stm32l4
