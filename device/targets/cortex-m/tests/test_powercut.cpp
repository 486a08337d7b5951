// Power cuts on the Cortex-M4 (the MCUboot way, plus torn operations): run a clean update (and a clean
// revert) and count its flash writes and erases; then rerun it with the power cut at operation i for every
// i, before the operation, torn in the middle of it, and right after it. After each cut the device reboots
// (boot selection) and carries on. Every boot must run a verified image that is exactly the old or exactly
// the new bundle, and the update must still end where the uncut run ends.
#include <initializer_list>
#include <new>

#include "device_fixture.h"
#include "tests.h"
#include "tinyfleet/boot.h"

using namespace tinyfleet;
using namespace tftarget;

namespace {

constexpr Layout kLayouts[] = {
    {2048, 4, 8, 0xFF},  // STM32L4: 2 KiB pages, double-word programming
    {4096, 2, 4, 0xFF},  // ESP32-S3 SPI flash: 4 KiB sectors
    {512, 16, 16, 0x00}, // 16-byte programming, erased to zero
};
constexpr uint32_t kBlock = 512;

struct Run {
  bool ok = true;
  const char* failure = nullptr;
  bool final_new = false;
  BootState final_state = BootState::Confirmed;
};

// One device life: provision old, then (with an optional cut armed) update to new; the trial's health
// check passes or fails. `ops` receives the number of flash operations of an uncut run.
Run run(const Layout& layout, bool health_ok, bool cut, uint32_t cut_at, ram::CutMode mode, uint32_t* ops) {
  ram::RamFlash& flash = fresh_flash(layout);
  alignas(BootSelector) static uint8_t storage[sizeof(BootSelector)];
  BootSelector& boot = *new (storage) BootSelector(flash, crypto(), 3);
  Run out;
  auto fail = [&out](const char* why) {
    out.ok = false;
    out.failure = why;
    return out;
  };
  if (write_image(flash, crypto(), 0, old_image(), kBlock, nullptr, nullptr) != Status::Ok ||
      boot.provision(0, old_image().desc) != Status::Ok)
    return fail("provisioning failed");
  const uint32_t base = flash.op_count();
  if (cut) flash.cut_power_at(cut_at, mode);
  for (int step = 0; step < 16; ++step) {
    if (!flash.powered()) flash.power_on();  // reboot
    BootDecision d;
    Status s = boot.select(d);
    if (s == Status::PowerLost) continue;
    if (s != Status::Ok) return fail("boot selection failed");
    const bool is_old = bank_holds(flash, d.bank, old_image());
    const bool is_new = bank_holds(flash, d.bank, new_image());
    if (is_old == is_new) return fail("booted bank holds neither bundle exactly");
    if (d.trial) {
      s = health_ok ? boot.confirm() : boot.revert();
      if (s != Status::Ok && s != Status::PowerLost) return fail("confirm/revert failed");
      continue;
    }
    if (is_new || d.record.state == BootState::Reverted) {
      out.final_new = is_new;
      out.final_state = d.record.state;
      if (ops != nullptr) *ops = flash.op_count() - base;
      return out;
    }
    s = install_update(flash, crypto(), boot, new_image(), kBlock);
    if (s != Status::Ok && s != Status::PowerLost) return fail("install failed");
  }
  return fail("did not settle within 16 boots");
}

}  // namespace

void test_powercut_every_cut_point() {
  uint32_t cuts = 0;
  for (const Layout& layout : kLayouts) {
    for (bool health_ok : {true, false}) {
      uint32_t n = 0;
      const Run clean = run(layout, health_ok, false, 0, ram::CutMode::Before, &n);
      TT_ASSERT(clean.ok);
      TT_ASSERT(clean.final_new == health_ok);
      TT_ASSERT(n > 5);
      for (uint32_t i = 0; i < n; ++i) {
        for (ram::CutMode mode : {ram::CutMode::Before, ram::CutMode::Torn, ram::CutMode::After}) {
          const Run r = run(layout, health_ok, true, i, mode, nullptr);
          if (!TT_EXPECT(r.ok)) {
            tinyfleet::semihost::write("    ");
            tinyfleet::semihost::write(r.failure);
            tinyfleet::semihost::write(" at op ");
            tinyfleet::semihost::write_u32(i);
            tinyfleet::semihost::write(", sector ");
            tinyfleet::semihost::write_u32(layout.sector_size);
            tinyfleet::semihost::write(", mode ");
            tinyfleet::semihost::write_u32(static_cast<uint32_t>(mode));
            tinyfleet::semihost::write("\n");
            return;
          }
          TT_EXPECT(r.final_new == health_ok);
          if (!health_ok) TT_EXPECT(r.final_state == BootState::Reverted);
          ++cuts;
        }
      }
    }
  }
  tinyfleet::semihost::write("  [powercut] ");
  tinyfleet::semihost::write_u32(cuts);
  tinyfleet::semihost::write(" cut points (3 flash geometries, update and revert, each cut before, torn and after)\n");
  TT_EXPECT(cuts > 3 * 2 * 3 * 5);
}
