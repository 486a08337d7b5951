#include "stm32l4_flash.h"

#include "stm32l4_regs.h"

namespace tinyfleet::stm32l4 {
namespace {

// Flash operations wait for BSY in a bounded loop: a controller that never finishes is a FlashError.
constexpr uint32_t kBusyLimit = 20u * 1000u * 1000u;
constexpr uint32_t kAcr = reg::kFlash + 0x00, kKeyr = reg::kFlash + 0x08, kSr = reg::kFlash + 0x10,
                   kCr = reg::kFlash + 0x14;
constexpr uint32_t kMemrmp = 0x40010000u;

}  // namespace

bool Stm32l4Flash::fb_mode() { return (bus_.read32(kMemrmp) & reg::MEMRMP_FB_MODE) != 0; }

bool Stm32l4Flash::wait_ready() {
  for (uint32_t i = 0; i < kBusyLimit; ++i)
    if ((bus_.read32(kSr) & reg::SR_BSY) == 0) return true;
  return false;
}

bool Stm32l4Flash::unlock() {
  if ((bus_.read32(kCr) & reg::CR_LOCK) == 0) return true;
  bus_.write32(kKeyr, reg::kKey1);
  bus_.write32(kKeyr, reg::kKey2);
  return (bus_.read32(kCr) & reg::CR_LOCK) == 0;
}

void Stm32l4Flash::lock() { bus_.write32(kCr, bus_.read32(kCr) | reg::CR_LOCK); }

// Error flags and EOP are cleared by writing 1.
void Stm32l4Flash::clear_flags() { bus_.write32(kSr, reg::SR_ERRORS | reg::SR_EOP); }

// The data cache may hold the old contents of a page just erased or programmed (RM0351 3.3.3).
void Stm32l4Flash::flush_data_cache() {
  const uint32_t acr = bus_.read32(kAcr);
  if ((acr & reg::ACR_DCEN) == 0) return;
  bus_.write32(kAcr, acr & ~reg::ACR_DCEN);
  bus_.write32(kAcr, (acr & ~reg::ACR_DCEN) | reg::ACR_DCRST);
  bus_.write32(kAcr, acr & ~reg::ACR_DCRST);
}

uint32_t Stm32l4Flash::address(const Location& at) { return address_of(at.bank, at.page, at.page_offset, fb_mode()); }

Status Stm32l4Flash::program_double_word(const Location& at, const uint8_t* src) {
  uint32_t low = 0, high = 0;
  double_word_split(src, low, high);
  const uint32_t a = address(at);
  bus_.write32(kCr, bus_.read32(kCr) | reg::CR_PG);
  bus_.write32(a, low);
  bus_.write32(a + 4, high);
  const bool ready = wait_ready();
  bus_.write32(kCr, bus_.read32(kCr) & ~reg::CR_PG);
  const uint32_t sr = bus_.read32(kSr);
  clear_flags();
  if (!ready || (sr & reg::SR_ERRORS) != 0) return Status::FlashError;
  return Status::Ok;
}

Status Stm32l4Flash::erase_page(uint8_t bank, uint16_t page) {
  uint32_t cr = bus_.read32(kCr) & ~(reg::CR_PNB_MASK | reg::CR_BKER | reg::CR_PG);
  cr |= reg::CR_PER | (static_cast<uint32_t>(page) << reg::CR_PNB_SHIFT) | (bank == 1 ? reg::CR_BKER : 0u);
  bus_.write32(kCr, cr);
  bus_.write32(kCr, cr | reg::CR_STRT);
  const bool ready = wait_ready();
  bus_.write32(kCr, bus_.read32(kCr) & ~(reg::CR_PER | reg::CR_PNB_MASK | reg::CR_BKER));
  const uint32_t sr = bus_.read32(kSr);
  clear_flags();
  if (!ready || (sr & reg::SR_ERRORS) != 0) return Status::FlashError;
  return Status::Ok;
}

Status Stm32l4Flash::read(FlashArea area, uint32_t offset, uint8_t* dst, size_t len) {
  if (len == 0) return Status::Ok;
  const FlashGeometry g = area_geometry(area);
  if (offset > g.size || len > g.size - offset) return Status::FlashError;
  while (len > 0) {
    Location at;
    if (!locate(area, offset, at)) return Status::FlashError;
    const size_t n = len < at.contiguous ? len : at.contiguous;
    bus_.read(address(at), dst, n);
    dst += n;
    offset += static_cast<uint32_t>(n);
    len -= n;
  }
  return Status::Ok;
}

Status Stm32l4Flash::write(FlashArea area, uint32_t offset, const uint8_t* src, size_t len) {
  Status s = check_write(area, offset, len);
  if (s != Status::Ok) return s;
  // NOR rule first, for the whole range: nothing is written if any target double word is not erased.
  for (uint32_t off = 0; off < len; off += kDoubleWord) {
    Location at;
    uint8_t current[kDoubleWord];
    if (!locate(area, offset + off, at)) return Status::FlashError;
    bus_.read(address(at), current, kDoubleWord);
    if (!double_word_erased(current)) return Status::FlashNotErased;
  }
  if (!wait_ready() || !unlock()) return Status::FlashError;
  clear_flags();
  for (uint32_t off = 0; off < len && s == Status::Ok; off += kDoubleWord) {
    Location at;
    locate(area, offset + off, at);
    s = program_double_word(at, src + off);
  }
  lock();
  flush_data_cache();
  return s;
}

Status Stm32l4Flash::erase(FlashArea area, uint32_t offset, size_t len) {
  Status s = check_erase(area, offset, len);
  if (s != Status::Ok) return s;
  if (!wait_ready() || !unlock()) return Status::FlashError;
  clear_flags();
  for (uint32_t off = 0; off < len && s == Status::Ok; off += kPageSize) {
    Location at;
    locate(area, offset + static_cast<uint32_t>(off), at);
    s = erase_page(at.bank, at.page);
  }
  lock();
  flush_data_cache();
  return s;
}

}  // namespace tinyfleet::stm32l4
