// A model of the STM32L476 flash interface (RM0351 section 3) behind the driver's Bus, for host tests of the
// register-level driver: the key sequence (a wrong key locks FLASH_CR until reset), double-word programming
// (PG, two word writes to consecutive addresses; PROGERR if the double word is not erased, PGAERR if the
// address is not aligned, PGSERR if PG and PER are both set), page erase (PER, PNB, BKER, STRT), error flags
// cleared by writing 1, and the bank mapping of SYSCFG_MEMRMP.FB_MODE. Operations complete at once (BSY never
// reads 1). It records every program and erase, and the writes to the independent watchdog's registers, so
// tests can check what reached the hardware.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "stm32l4_bus.h"
#include "stm32l4_layout.h"
#include "stm32l4_regs.h"

namespace stm32model {

using namespace tinyfleet::stm32l4;

class FlashController final : public Bus {
 public:
  FlashController() : array_(2 * kBankSize, 0xFF) {}

  uint32_t read32(uint32_t a) override {
    if (a >= kFlashBase && a + 4 <= kFlashBase + 2 * kBankSize) {
      uint8_t w[4];
      read(a, w, 4);
      return static_cast<uint32_t>(w[0]) | w[1] << 8 | w[2] << 16 | static_cast<uint32_t>(w[3]) << 24;
    }
    if (a == reg::kFlash + 0x10) return sr_;
    if (a == reg::kFlash + 0x14) return cr_;
    if (a == reg::kFlash + 0x00) return acr_;
    if (a == 0x40010000u) return memrmp_;
    if (a >= 0x20000000u && a < kSram1End) return sram_[a];
    return 0;
  }

  void write32(uint32_t a, uint32_t v) override {
    if (a == reg::kFlash + 0x08) return key(v);
    if (a == reg::kFlash + 0x10) {  // rc_w1
      sr_ &= ~(v & (reg::SR_ERRORS | reg::SR_EOP));
      return;
    }
    if (a == reg::kFlash + 0x00) {
      acr_ = v;
      if (v & reg::ACR_DCRST) ++cache_resets;
      return;
    }
    if (a == reg::kFlash + 0x14) return control(v);
    if (a == 0x40010000u) {
      memrmp_ = v;
      return;
    }
    if (a >= 0x20000000u && a < kSram1End) {
      sram_[a] = v;
      return;
    }
    if (a == reg::kIwdg + 0x00) {
      iwdg_keys.push_back(v);
      return;
    }
    if (a == reg::kIwdg + 0x04) iwdg_pr = v;
    if (a == reg::kIwdg + 0x08) iwdg_rlr = v;
    if (a == reg::kIwdg + 0x04 || a == reg::kIwdg + 0x08) return;
    if (a >= kFlashBase && a < kFlashBase + 2 * kBankSize) return program_word(a, v);
  }

  void read(uint32_t a, uint8_t* dst, size_t len) override {
    for (size_t i = 0; i < len; ++i) dst[i] = array_[physical(a + static_cast<uint32_t>(i))];
  }

  // --- test controls and observations ---
  void set_fb_mode(bool on) { memrmp_ = on ? reg::MEMRMP_FB_MODE : 0; }
  void write_protect(uint8_t bank, uint32_t page) { protected_.insert({bank, page}); }
  uint8_t byte(uint8_t bank, uint32_t page, uint32_t off) const { return array_[bank * kBankSize + page * kPageSize + off]; }
  void poke(uint8_t bank, uint32_t page, uint32_t off, uint8_t v) { array_[bank * kBankSize + page * kPageSize + off] = v; }
  bool locked() const { return (cr_ & reg::CR_LOCK) != 0; }
  bool fb_mode() const { return (memrmp_ & reg::MEMRMP_FB_MODE) != 0; }
  void poke_sram(uint32_t a, uint32_t v) { sram_[a] = v; }
  std::vector<uint32_t> iwdg_keys;  // writes to IWDG_KR, in order
  uint32_t iwdg_pr = 0, iwdg_rlr = 0;
  uint32_t programs = 0, erases = 0, cache_resets = 0;
  std::vector<std::pair<uint8_t, uint32_t>> erased_pages;  // (physical bank, page), in order
  uint32_t errors_seen = 0;

 private:
  uint32_t physical(uint32_t a) const {
    const uint32_t off = a - kFlashBase;
    const uint32_t slot = off / kBankSize;
    const uint32_t bank = slot ^ ((memrmp_ & reg::MEMRMP_FB_MODE) ? 1u : 0u);
    return bank * kBankSize + off % kBankSize;
  }

  void key(uint32_t v) {
    if (key_state_ == 0 && v == reg::kKey1) {
      key_state_ = 1;
    } else if (key_state_ == 1 && v == reg::kKey2 && !key_error_) {
      cr_ &= ~reg::CR_LOCK;
      key_state_ = 0;
    } else {
      key_error_ = true;  // locked until the next reset
      key_state_ = 0;
    }
  }

  void error(uint32_t flag) {
    sr_ |= flag;
    ++errors_seen;
  }

  void control(uint32_t v) {
    if (cr_ & reg::CR_LOCK) {
      if (v & reg::CR_LOCK) return;
      return;  // writes are ignored while locked
    }
    cr_ = v & ~reg::CR_STRT;
    if ((v & reg::CR_PG) && (v & reg::CR_PER)) return error(reg::SR_PGSERR);
    if ((v & reg::CR_STRT) && (v & reg::CR_PER)) {
      const uint8_t bank = (v & reg::CR_BKER) ? 1 : 0;
      const uint32_t page = (v & reg::CR_PNB_MASK) >> reg::CR_PNB_SHIFT;
      if (protected_.count({bank, page})) return error(reg::SR_WRPERR);
      for (uint32_t i = 0; i < kPageSize; ++i) array_[bank * kBankSize + page * kPageSize + i] = 0xFF;
      erased_pages.push_back({bank, page});
      ++erases;
      sr_ |= reg::SR_EOP;
    }
  }

  void program_word(uint32_t a, uint32_t v) {
    if (!(cr_ & reg::CR_PG) || (cr_ & reg::CR_LOCK)) return error(reg::SR_PGSERR);
    if (!have_first_) {
      if (a % 8 != 0) return error(reg::SR_PGAERR);
      first_addr_ = a;
      first_ = v;
      have_first_ = true;
      return;
    }
    have_first_ = false;
    if (a != first_addr_ + 4) return error(reg::SR_PGAERR);
    const uint32_t p = physical(first_addr_);
    const uint32_t bank = p / kBankSize, page = (p % kBankSize) / kPageSize;
    if (protected_.count({static_cast<uint8_t>(bank), page})) return error(reg::SR_WRPERR);
    for (int i = 0; i < 8; ++i)
      if (array_[p + i] != 0xFF) return error(reg::SR_PROGERR);
    for (int i = 0; i < 4; ++i) {
      array_[p + i] = static_cast<uint8_t>(first_ >> (8 * i));
      array_[p + 4 + i] = static_cast<uint8_t>(v >> (8 * i));
    }
    ++programs;
    sr_ |= reg::SR_EOP;
  }

  std::vector<uint8_t> array_;
  std::set<std::pair<uint8_t, uint32_t>> protected_;
  uint32_t sr_ = 0, cr_ = reg::CR_LOCK, acr_ = reg::ACR_DCEN | reg::ACR_ICEN, memrmp_ = 0;
  std::map<uint32_t, uint32_t> sram_;  // SRAM1 words written (the boot handoff); 0 where never written
  int key_state_ = 0;
  bool key_error_ = false;
  bool have_first_ = false;
  uint32_t first_addr_ = 0, first_ = 0;
};

}  // namespace stm32model
