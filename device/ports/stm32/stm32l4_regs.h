// STM32L476 registers the port uses (RM0351), by address: no CMSIS device header or HAL is available.
#pragma once

#include <cstdint>

namespace tinyfleet::stm32l4::reg {

inline volatile uint32_t& at(uint32_t address) { return *reinterpret_cast<volatile uint32_t*>(address); }

// Flash interface (RM0351 3.7).
constexpr uint32_t kFlash = 0x40022000u;
inline volatile uint32_t& FLASH_ACR() { return at(kFlash + 0x00); }
inline volatile uint32_t& FLASH_KEYR() { return at(kFlash + 0x08); }
inline volatile uint32_t& FLASH_OPTKEYR() { return at(kFlash + 0x0C); }
inline volatile uint32_t& FLASH_SR() { return at(kFlash + 0x10); }
inline volatile uint32_t& FLASH_CR() { return at(kFlash + 0x14); }
inline volatile uint32_t& FLASH_OPTR() { return at(kFlash + 0x20); }

constexpr uint32_t kKey1 = 0x45670123u;
constexpr uint32_t kKey2 = 0xCDEF89ABu;

constexpr uint32_t ACR_ICEN = 1u << 9;
constexpr uint32_t ACR_DCEN = 1u << 10;
constexpr uint32_t ACR_ICRST = 1u << 11;
constexpr uint32_t ACR_DCRST = 1u << 12;

constexpr uint32_t SR_EOP = 1u << 0;
constexpr uint32_t SR_OPERR = 1u << 1;
constexpr uint32_t SR_PROGERR = 1u << 3;
constexpr uint32_t SR_WRPERR = 1u << 4;
constexpr uint32_t SR_PGAERR = 1u << 5;
constexpr uint32_t SR_SIZERR = 1u << 6;
constexpr uint32_t SR_PGSERR = 1u << 7;
constexpr uint32_t SR_MISERR = 1u << 8;
constexpr uint32_t SR_FASTERR = 1u << 9;
constexpr uint32_t SR_RDERR = 1u << 14;
constexpr uint32_t SR_OPTVERR = 1u << 15;
constexpr uint32_t SR_BSY = 1u << 16;
constexpr uint32_t SR_ERRORS = SR_OPERR | SR_PROGERR | SR_WRPERR | SR_PGAERR | SR_SIZERR | SR_PGSERR | SR_MISERR |
                               SR_FASTERR | SR_RDERR | SR_OPTVERR;

constexpr uint32_t CR_PG = 1u << 0;
constexpr uint32_t CR_PER = 1u << 1;
constexpr uint32_t CR_PNB_SHIFT = 3;  // 8 bits: page number in the bank
constexpr uint32_t CR_PNB_MASK = 0xFFu << CR_PNB_SHIFT;
constexpr uint32_t CR_BKER = 1u << 11;
constexpr uint32_t CR_STRT = 1u << 16;
constexpr uint32_t CR_LOCK = 1u << 31;

constexpr uint32_t OPTR_BFB2 = 1u << 20;
constexpr uint32_t OPTR_DUALBANK = 1u << 21;

// SYSCFG memory remap (RM0351 9.2.1): FB_MODE maps bank 2 at 0x08000000.
inline volatile uint32_t& SYSCFG_MEMRMP() { return at(0x40010000u); }
constexpr uint32_t MEMRMP_FB_MODE = 1u << 8;

// RCC APB2 clock enable: SYSCFG.
inline volatile uint32_t& RCC_APB2ENR() { return at(0x40021000u + 0x60); }
constexpr uint32_t APB2ENR_SYSCFGEN = 1u << 0;

// Independent watchdog (RM0351 37).
constexpr uint32_t kIwdg = 0x40003000u;
inline volatile uint32_t& IWDG_KR() { return at(kIwdg + 0x00); }
inline volatile uint32_t& IWDG_PR() { return at(kIwdg + 0x04); }
inline volatile uint32_t& IWDG_RLR() { return at(kIwdg + 0x08); }
inline volatile uint32_t& IWDG_SR() { return at(kIwdg + 0x0C); }
constexpr uint32_t IWDG_KEY_START = 0xCCCCu;
constexpr uint32_t IWDG_KEY_ACCESS = 0x5555u;
constexpr uint32_t IWDG_KEY_REFRESH = 0xAAAAu;

// Cortex-M4 system control block.
inline volatile uint32_t& SCB_VTOR() { return at(0xE000ED08u); }
inline volatile uint32_t& SCB_AIRCR() { return at(0xE000ED0Cu); }
constexpr uint32_t AIRCR_SYSRESETREQ = 0x05FA0004u;

}  // namespace tinyfleet::stm32l4::reg
