#include "stm32l4_boot.h"

#include "stm32l4_regs.h"

namespace tinyfleet::stm32l4 {
namespace {

[[noreturn]] void start_firmware(uint32_t vector_table) {
  const uint32_t sp = reg::at(vector_table);
  const uint32_t reset = reg::at(vector_table + 4);
  reg::SCB_VTOR() = vector_table;
  asm volatile(
      "msr msp, %0\n"
      "dsb\n"
      "isb\n"
      "bx %1\n"
      :
      : "r"(sp), "r"(reset)
      : "memory");
  __builtin_unreachable();
}

void map_bank_at_zero(uint8_t bank) {
  reg::RCC_APB2ENR() |= reg::APB2ENR_SYSCFGEN;
  const uint32_t enabled = reg::RCC_APB2ENR();  // read back: the clock is on two cycles after the write
  (void)enabled;
  uint32_t memrmp = reg::SYSCFG_MEMRMP() & ~reg::MEMRMP_FB_MODE;
  if (fb_mode_for(bank)) memrmp |= reg::MEMRMP_FB_MODE;
  reg::SYSCFG_MEMRMP() = memrmp;
  asm volatile("dsb\nisb" ::: "memory");
}

}  // namespace

void iwdg_start(const IwdgSetting& setting) {
  reg::IWDG_KR() = reg::IWDG_KEY_START;
  reg::IWDG_KR() = reg::IWDG_KEY_ACCESS;
  reg::IWDG_PR() = setting.pr;
  reg::IWDG_RLR() = setting.rlr;
  while (reg::IWDG_SR() != 0) {
  }  // PVU/RVU: the new values reached the LSI domain
  reg::IWDG_KR() = reg::IWDG_KEY_REFRESH;
}

void iwdg_refresh() { reg::IWDG_KR() = reg::IWDG_KEY_REFRESH; }

void system_reset() {
  asm volatile("dsb" ::: "memory");
  reg::SCB_AIRCR() = reg::AIRCR_SYSRESETREQ;
  asm volatile("dsb" ::: "memory");
  for (;;) {
  }
}

Status boot_selected_image(BootSelector& selector, const BootConfig& config) {
  BootDecision decision;
  Status s = selector.select(decision);
  if (s != Status::Ok) return s;
  const BundleInfo& info = selector.last_info();  // the selected bank's image, as just verified
  const int fw = info.find(ComponentType::Firmware);
  if (fw < 0) return Status::InvalidArgument;
  const ComponentEntry& c = info.components[fw];

  IwdgSetting watchdog;
  if (decision.trial && !iwdg_setting(config.trial_watchdog_ms, config.lsi_hz, watchdog))
    return Status::InvalidArgument;
  map_bank_at_zero(decision.bank);
  const uint32_t table = kFlashBase + kImageFirstPage * kPageSize + c.offset;
  const uint32_t checked = firmware_vector_table(c.offset, c.length, reg::at(table), reg::at(table + 4));
  if (checked == 0) {
    map_bank_at_zero(0);
    return Status::InvalidArgument;
  }
  if (decision.trial) iwdg_start(watchdog);
  start_firmware(checked);
}

}  // namespace tinyfleet::stm32l4
