#include "stm32l4_flash.h"

#include <cstring>

#include "stm32l4_regs.h"

namespace tinyfleet::stm32l4 {
namespace {

// Flash operations wait for BSY in a bounded loop: a controller that never finishes is a FlashError.
constexpr uint32_t kBusyLimit = 20u * 1000u * 1000u;

bool wait_ready() {
  for (uint32_t i = 0; i < kBusyLimit; ++i)
    if ((reg::FLASH_SR() & reg::SR_BSY) == 0) return true;
  return false;
}

bool unlock() {
  if ((reg::FLASH_CR() & reg::CR_LOCK) == 0) return true;
  reg::FLASH_KEYR() = reg::kKey1;
  reg::FLASH_KEYR() = reg::kKey2;
  return (reg::FLASH_CR() & reg::CR_LOCK) == 0;
}

void lock() { reg::FLASH_CR() |= reg::CR_LOCK; }

// Error flags are cleared by writing 1; EOP too.
void clear_flags() { reg::FLASH_SR() = reg::SR_ERRORS | reg::SR_EOP; }

// The data cache may hold the old contents of a page just erased or programmed (RM0351 3.3.3).
void flush_data_cache() {
  const uint32_t acr = reg::FLASH_ACR();
  if ((acr & reg::ACR_DCEN) == 0) return;
  reg::FLASH_ACR() = acr & ~reg::ACR_DCEN;
  reg::FLASH_ACR() = (acr & ~reg::ACR_DCEN) | reg::ACR_DCRST;
  reg::FLASH_ACR() = acr & ~reg::ACR_DCRST;
}

const uint8_t* cpu_pointer(const Location& at) {
  return reinterpret_cast<const uint8_t*>(address_of(at.bank, at.page, at.page_offset, fb_mode()));
}

Status program_double_word(const Location& at, const uint8_t* src) {
  uint32_t low = 0, high = 0;
  double_word_split(src, low, high);
  const uint32_t address = address_of(at.bank, at.page, at.page_offset, fb_mode());
  reg::FLASH_CR() |= reg::CR_PG;
  reg::at(address) = low;
  reg::at(address + 4) = high;
  const bool ready = wait_ready();
  reg::FLASH_CR() &= ~reg::CR_PG;
  const uint32_t sr = reg::FLASH_SR();
  clear_flags();
  if (!ready || (sr & reg::SR_ERRORS) != 0) return Status::FlashError;
  return Status::Ok;
}

Status erase_page(uint8_t bank, uint16_t page) {
  uint32_t cr = reg::FLASH_CR() & ~(reg::CR_PNB_MASK | reg::CR_BKER | reg::CR_PG);
  cr |= reg::CR_PER | (static_cast<uint32_t>(page) << reg::CR_PNB_SHIFT) | (bank == 1 ? reg::CR_BKER : 0u);
  reg::FLASH_CR() = cr;
  reg::FLASH_CR() = cr | reg::CR_STRT;
  const bool ready = wait_ready();
  reg::FLASH_CR() &= ~(reg::CR_PER | reg::CR_PNB_MASK | reg::CR_BKER);
  const uint32_t sr = reg::FLASH_SR();
  clear_flags();
  if (!ready || (sr & reg::SR_ERRORS) != 0) return Status::FlashError;
  return Status::Ok;
}

}  // namespace

bool fb_mode() { return (reg::SYSCFG_MEMRMP() & reg::MEMRMP_FB_MODE) != 0; }

Status Stm32l4Flash::read(FlashArea area, uint32_t offset, uint8_t* dst, size_t len) {
  if (len == 0) return Status::Ok;
  const FlashGeometry g = area_geometry(area);
  if (offset > g.size || len > g.size - offset) return Status::FlashError;
  while (len > 0) {
    Location at;
    if (!locate(area, offset, at)) return Status::FlashError;
    const size_t n = len < at.contiguous ? len : at.contiguous;
    std::memcpy(dst, cpu_pointer(at), n);
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
    if (!locate(area, offset + off, at)) return Status::FlashError;
    if (!double_word_erased(cpu_pointer(at))) return Status::FlashNotErased;
  }
  if (!wait_ready()) return Status::FlashError;
  if (!unlock()) return Status::FlashError;
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
  if (!wait_ready()) return Status::FlashError;
  if (!unlock()) return Status::FlashError;
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
