// STM32L476 dual-bank flash as the tinyfleet core sees it: pure arithmetic, no register access, so it is
// unit-tested on the host (device/targets/host-tests).
//
// The part has 1 MiB of flash in two physical banks of 256 pages x 2 KiB. Both banks are laid out alike:
//   pages   0..15   bootloader (32 KiB; the same bootloader in both banks, see stm32l4_boot.h)
//   page   16       metadata copy (Meta0 in bank 1, Meta1 in bank 2: an erase of one bank never touches both)
//   page   17       scratch half (the agent's progress record: first half in bank 1, second in bank 2)
//   pages 18..255   image bank (Bank0 = physical bank 1, Bank1 = physical bank 2), 238 pages = 476 KiB
// Bank1/Bank2 of the reference manual are physical banks 0/1 here. Which of them appears at 0x08000000
// depends on SYSCFG_MEMRMP.FB_MODE (0: bank 1, 1: bank 2); erase selects the physical bank (FLASH_CR.BKER).
// Programming is by 64-bit double word: offset and length multiples of 8, and the double word must be
// erased (all 0xFF) before it is programmed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/ports.h"

namespace tinyfleet::stm32l4 {

constexpr uint32_t kFlashBase = 0x08000000u;
constexpr uint32_t kPageSize = 2048;
constexpr uint32_t kPagesPerBank = 256;
constexpr uint32_t kBankSize = kPageSize * kPagesPerBank;  // 512 KiB
constexpr uint32_t kDoubleWord = 8;
constexpr uint8_t kErased = 0xFF;

constexpr uint32_t kBootPages = 16;
constexpr uint32_t kMetaPage = 16;
constexpr uint32_t kScratchPage = 17;
constexpr uint32_t kImageFirstPage = 18;
constexpr uint32_t kImagePages = kPagesPerBank - kImageFirstPage;
constexpr uint32_t kImageSize = kImagePages * kPageSize;

// The boot handoff: the last 16 bytes of SRAM1, outside both images' RAM (runtime/stm32l476rg*.ld end RAM
// 16 bytes early), kept across the reset into the firmware.
constexpr uint32_t kSram1End = 0x20000000u + 96u * 1024u;
constexpr uint32_t kBootHandoffAddr = kSram1End - 16u;

// Where a byte of an area lives: physical bank (0 or 1), page in that bank, offset in the page, and how many
// bytes from there on stay in the same page.
struct Location {
  uint8_t bank = 0;
  uint16_t page = 0;
  uint32_t page_offset = 0;
  uint32_t contiguous = 0;
};

// The geometry the core sees for an area (size, 2 KiB sectors, 8-byte writes, erased 0xFF).
FlashGeometry area_geometry(FlashArea area);

// False if [offset, offset + 1) is outside the area.
bool locate(FlashArea area, uint32_t offset, Location& out);

// The CPU address of (bank, page, page_offset) with the current bank mapping (FB_MODE).
constexpr uint32_t address_of(uint8_t bank, uint32_t page, uint32_t page_offset, bool fb_mode) {
  const uint32_t mapped_slot = static_cast<uint32_t>(bank) ^ (fb_mode ? 1u : 0u);
  return kFlashBase + mapped_slot * kBankSize + page * kPageSize + page_offset;
}

// The FB_MODE value that maps physical bank `bank` at 0x08000000.
constexpr bool fb_mode_for(uint8_t bank) { return bank == 1; }

// Write-granularity rules: Ok, FlashError (out of the area), or FlashMisaligned.
Status check_write(FlashArea area, uint32_t offset, size_t len);
// Erase rules: Ok, FlashError, or FlashMisaligned (not whole pages).
Status check_erase(FlashArea area, uint32_t offset, size_t len);
// True if all 8 bytes read 0xFF (a programmed or half-programmed double word must be erased first).
bool double_word_erased(const uint8_t* p);
// The two 32-bit words the controller is given for the double word at p (little-endian, low word first).
void double_word_split(const uint8_t* p, uint32_t& low, uint32_t& high);

// Independent watchdog (LSI clock) settings for a trial boot's timeout: prescaler code PR (divider
// 4 << PR, PR 0..6) and 12-bit reload RLR, the smallest divider that reaches at least `timeout_ms`.
// False if the timeout is 0 or longer than the watchdog can count (4096 * 256 / lsi_hz seconds).
struct IwdgSetting {
  uint8_t pr = 0;
  uint16_t rlr = 0;
  uint32_t timeout_ms = 0;  // what the setting really gives (>= the requested timeout)
};
bool iwdg_setting(uint32_t timeout_ms, uint32_t lsi_hz, IwdgSetting& out);

// A firmware component is started in place from its image bank once that bank is mapped at 0x08000000:
// its vector table must be 512-byte aligned (VTOR), its initial stack pointer inside SRAM1 and its reset
// handler (Thumb) inside the component. Returns the CPU address of the vector table, or 0 if not runnable.
uint32_t firmware_vector_table(uint32_t component_offset, uint32_t component_len, uint32_t initial_sp,
                               uint32_t reset_handler);

}  // namespace tinyfleet::stm32l4
