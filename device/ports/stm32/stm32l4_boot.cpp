#include "stm32l4_boot.h"

#include "stm32l4_regs.h"
#include "tinyfleet/bytes.h"

namespace tinyfleet::stm32l4 {
namespace {

constexpr uint32_t kMemrmp = 0x40010000u;
constexpr uint32_t kHandoffMagic = 0x48424654u;  // "TFBH" little-endian

uint32_t handoff_crc(const uint32_t words[3]) {
  uint8_t bytes[12];
  for (int i = 0; i < 3; ++i) store_u32le(bytes + 4 * i, words[i]);
  return crc32_ieee(bytes, sizeof bytes);
}
constexpr uint32_t kApb2enr = 0x40021000u + 0x60;

#if defined(__arm__)
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
#endif

}  // namespace

void map_bank_at_zero(Bus& bus, uint8_t bank) {
  bus.write32(kApb2enr, bus.read32(kApb2enr) | reg::APB2ENR_SYSCFGEN);
  (void)bus.read32(kApb2enr);  // read back: the clock is on two cycles after the write
  uint32_t memrmp = bus.read32(kMemrmp) & ~reg::MEMRMP_FB_MODE;
  if (fb_mode_for(bank)) memrmp |= reg::MEMRMP_FB_MODE;
  bus.write32(kMemrmp, memrmp);
#if defined(__arm__)
  asm volatile("dsb\nisb" ::: "memory");
#endif
}

void iwdg_start(Bus& bus, const IwdgSetting& setting) {
  bus.write32(reg::kIwdg + 0x00, reg::IWDG_KEY_START);
  bus.write32(reg::kIwdg + 0x00, reg::IWDG_KEY_ACCESS);
  bus.write32(reg::kIwdg + 0x04, setting.pr);
  bus.write32(reg::kIwdg + 0x08, setting.rlr);
  while (bus.read32(reg::kIwdg + 0x0C) != 0) {
  }  // PVU/RVU: the new values reached the LSI domain
  bus.write32(reg::kIwdg + 0x00, reg::IWDG_KEY_REFRESH);
}

void iwdg_refresh(Bus& bus) { bus.write32(reg::kIwdg + 0x00, reg::IWDG_KEY_REFRESH); }

void system_reset() {
#if defined(__arm__)
  asm volatile("dsb" ::: "memory");
  reg::SCB_AIRCR() = reg::AIRCR_SYSRESETREQ;
  asm volatile("dsb" ::: "memory");
#endif
  for (;;) {
  }
}

Status prepare_boot(BootSelector& selector, const BootConfig& config, Bus& bus, uint32_t& vector_table) {
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

  map_bank_at_zero(bus, decision.bank);
  const uint32_t table = kFlashBase + kImageFirstPage * kPageSize + c.offset;
  vector_table = firmware_vector_table(c.offset, c.length, bus.read32(table), bus.read32(table + 4));
  if (vector_table == 0) {
    map_bank_at_zero(bus, 0);
    return Status::InvalidArgument;
  }
  if (decision.trial) iwdg_start(bus, watchdog);
  write_boot_handoff(bus, decision);
  return Status::Ok;
}

void write_boot_handoff(Bus& bus, const BootDecision& decision) {
  const uint32_t words[3] = {kHandoffMagic,
                             decision.bank | (decision.trial ? 1u : 0u) << 8 | (decision.reverted ? 1u : 0u) << 16,
                             decision.record.seq};
  for (uint32_t i = 0; i < 3; ++i) bus.write32(kBootHandoffAddr + 4 * i, words[i]);
  bus.write32(kBootHandoffAddr + 12, handoff_crc(words));
}

Status take_boot_decision(Bus& bus, MetadataStore& store, BootDecision& out) {
  uint32_t words[3];
  for (uint32_t i = 0; i < 3; ++i) words[i] = bus.read32(kBootHandoffAddr + 4 * i);
  const bool intact = words[0] == kHandoffMagic && bus.read32(kBootHandoffAddr + 12) == handoff_crc(words) &&
                      (words[1] & ~0x010101u) == 0;
  bus.write32(kBootHandoffAddr, 0);  // consumed: a later start without the bootloader finds none
  if (!intact) return Status::NotFound;
  out = BootDecision{};
  const Status s = store.load(out.record);
  if (s != Status::Ok) return s;
  if (out.record.seq != words[2]) return Status::NotFound;
  out.bank = static_cast<uint8_t>(words[1] & 1u);
  out.trial = (words[1] >> 8 & 1u) != 0;
  out.reverted = (words[1] >> 16 & 1u) != 0;
  return Status::Ok;
}

Status boot_selected_image(BootSelector& selector, const BootConfig& config) {
#if defined(__arm__)
  McuBus bus;
  uint32_t vector_table = 0;
  const Status s = prepare_boot(selector, config, bus, vector_table);
  if (s != Status::Ok) return s;
  start_firmware(vector_table);
#else
  (void)selector;
  (void)config;
  return Status::InvalidState;  // only an MCU starts firmware
#endif
}

}  // namespace tinyfleet::stm32l4
