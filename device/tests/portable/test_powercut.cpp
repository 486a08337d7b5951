// Power cuts (the MCUboot way, plus torn operations): for each flash geometry, write granularity and erased
// value, run a clean update (and a clean revert) and count its flash writes and erases; then rerun it with
// the power cut at operation i for every i, before the operation, torn in the middle of it, and right after
// it. After each cut the device reboots (boot selection) and carries on. Every boot must run a verified
// image that is exactly the old or exactly the new bundle, and the update must still end where the uncut
// run ends. Then cuts during recovery too: several per device life, at random operations, random fractions.
#include <initializer_list>
#include <new>
#include <random>

#include "device_fixture.h"
#include "tinyfleet/boot.h"
#include "tinytest.h"

using namespace tinyfleet;
using namespace tftest;

namespace {

// Each layout: two banks, one sector per metadata copy.
#ifdef TT_FULL_SCALE
constexpr Layout kLayouts[] = {
    {256, 32, 1, 0xFF},  {256, 32, 1, 0x00},  {256, 32, 4, 0xFF},  {256, 32, 4, 0x00},  {256, 32, 8, 0xFF},
    {256, 32, 8, 0x00},  {256, 32, 16, 0xFF}, {256, 32, 16, 0x00}, {1024, 8, 1, 0xFF},  {1024, 8, 1, 0x00},
    {1024, 8, 4, 0xFF},  {1024, 8, 4, 0x00},  {1024, 8, 8, 0xFF},  {1024, 8, 8, 0x00},  {1024, 8, 16, 0xFF},
    {1024, 8, 16, 0x00}, {4096, 2, 1, 0xFF},  {4096, 2, 1, 0x00},  {4096, 2, 4, 0xFF},  {4096, 2, 4, 0x00},
    {4096, 2, 8, 0xFF},  {4096, 2, 8, 0x00},  {4096, 2, 16, 0xFF}, {4096, 2, 16, 0x00},
};
constexpr int kRandomLivesPerLayout = 20;
#else  // an emulated Cortex-M4: one geometry of each kind
constexpr Layout kLayouts[] = {
    {2048, 4, 8, 0xFF},   // STM32L4: 2 KiB pages, double-word programming
    {4096, 2, 4, 0xFF},   // ESP32-S3 SPI flash: 4 KiB sectors
    {512, 16, 16, 0x00},  // 16-byte programming, erased to zero
};
constexpr int kRandomLivesPerLayout = 3;
#endif
constexpr uint32_t kLayoutCount = sizeof(kLayouts) / sizeof(kLayouts[0]);
constexpr uint32_t kBlock = 1024;
// The update: new firmware and model (downloaded in blocks), the other components copied from the old bank.
const Image& update_image() { return other_image(); }

struct Run {
  bool ok = true;
  const char* failure = nullptr;
  int boots = 0;
  bool final_new = false;
  BootState final_state = BootState::Confirmed;
  uint32_t cuts_fired = 0;  // power cuts that fired (the flash counts them)
  bool still_armed = false;  // a cut armed that the run ended before
};

// Schedules the next cut: called once before the update starts (after_reboot false) and after every reboot.
struct CutPlan {
  void (*arm)(CutPlan& plan, ram::RamFlash& flash, bool after_reboot) = nullptr;
  uint32_t at = 0;
  ram::CutMode mode = ram::CutMode::Before;
  std::minstd_rand* rng = nullptr;
  int left = 0;
  uint32_t armed = 0;  // cuts armed
};

void cut_once(CutPlan& p, ram::RamFlash& flash, bool after_reboot) {
  if (after_reboot) return;
  flash.cut_power_at(p.at, p.mode);
  ++p.armed;
}

// Up to p.left cuts, each at a random later operation (including the boot-time metadata writes and the
// re-download after a reboot), with a random torn fraction.
void random_cuts(CutPlan& p, ram::RamFlash& flash, bool) {
  if (p.left-- <= 0) return;
  flash.cut_power_at((*p.rng)() % 40, static_cast<ram::CutMode>((*p.rng)() % 3), (*p.rng)() % 1001);
  ++p.armed;
}

// One device life: provision old, then (with the cuts planned) update to new; the trial's health check
// passes or fails. Returns after the device settles (new confirmed, or old after a revert); `ops` receives
// the number of flash operations, `install_ops` those up to the trial's install.
Run run(const Layout& layout, bool health_ok, CutPlan* plan, uint32_t* ops, uint32_t* install_ops = nullptr) {
  alignas(BootSelector) static uint8_t storage[sizeof(BootSelector)];
  Run out;
  ram::RamFlash* cut_flash = nullptr;  // the flash the cuts are armed on
  auto fail = [&out, &cut_flash](const char* why) {
    out.ok = false;
    out.failure = why;
    if (cut_flash != nullptr) out.cuts_fired = cut_flash->cuts_fired();
    return out;
  };
  // Provisioned once per layout; every run starts from a copy of that flash.
  static const Layout* provisioned = nullptr;
  if (provisioned != &layout) {
    provisioned = nullptr;
    ram::RamFlash& factory = fresh_flash(layout);
    BootSelector& boot = *new (storage) BootSelector(factory, crypto(), 3);
    if (write_image(factory, crypto(), 0, old_image(), kBlock, nullptr, nullptr) != Status::Ok ||
        boot.provision(0, old_image().desc) != Status::Ok)
      return fail("provisioning failed");
    save_flash();
    provisioned = &layout;
  }
  ram::RamFlash& flash = restored_flash();
  cut_flash = &flash;
  BootSelector& boot = *new (storage) BootSelector(flash, crypto(), 3);
  const uint64_t base = flash.op_count();
  if (plan != nullptr) plan->arm(*plan, flash, false);
  for (int step = 0; step < 32; ++step) {
    if (!flash.powered()) {
      flash.power_on();  // reboot
      if (plan != nullptr) plan->arm(*plan, flash, true);
    }
    BootDecision d;
    Status s = boot.select(d);
    if (s == Status::PowerLost) continue;
    if (s != Status::Ok) return fail("boot selection failed");
    ++out.boots;
    // The image about to run is exactly one of the two bundles, never neither, never a mix.
    const bool is_old = bank_holds(flash, d.bank, old_image());
    const bool is_new = bank_holds(flash, d.bank, update_image());
    if (is_old == is_new) return fail("booted bank holds neither bundle exactly");
    if (d.trial) {
      s = health_ok ? boot.confirm() : boot.revert();
      if (s != Status::Ok && s != Status::PowerLost) return fail("confirm/revert failed");
      continue;  // reboot into the result
    }
    if (is_new || d.record.state == BootState::Reverted) {
      out.final_new = is_new;
      out.final_state = d.record.state;
      if (ops != nullptr) *ops = static_cast<uint32_t>(flash.op_count() - base);
      out.cuts_fired = flash.cuts_fired();
      out.still_armed = flash.armed();
      return out;
    }
    s = install_update(flash, crypto(), boot, update_image(), kBlock);
    if (s != Status::Ok && s != Status::PowerLost) return fail("install failed");
    if (s == Status::Ok && install_ops != nullptr) *install_ops = static_cast<uint32_t>(flash.op_count() - base);
  }
  return fail("did not settle within 32 boots");
}

void log_failure(const Run& r, const Layout& layout, uint32_t op, uint32_t mode) {
  tt::log("    ");
  tt::log(r.failure);
  tt::log(" at op ");
  tt::log_u32(op);
  tt::log(", sector ");
  tt::log_u32(layout.sector_size);
  tt::log(", granularity ");
  tt::log_u32(layout.write_align);
  tt::log(", erased ");
  tt::log_u32(layout.erased);
  tt::log(", mode ");
  tt::log_u32(mode);
  tt::log("\n");
}

}  // namespace

TT_TEST(PowerCut, EveryCutPointBootsTheOldOrTheNewImage) {
  // Cut points by where they fall: in an update that confirms; in the install of an update that then
  // reverts; in the revert's own operations (the trial boot's count and the revert).
  uint32_t cuts = 0, configs = 0, in_updates = 0, in_installs_reverted = 0, in_reverts = 0;
  for (const Layout& layout : kLayouts) {
    ++configs;
    for (bool health_ok : {true, false}) {
      uint32_t n = 0, install_ops = 0;
      const Run clean = run(layout, health_ok, nullptr, &n, &install_ops);
      TT_ASSERT(clean.ok);
      TT_ASSERT(clean.final_new == health_ok);
      TT_ASSERT(n > 5);
      TT_ASSERT(install_ops > 0 && install_ops < n);
      for (uint32_t i = 0; i < n; ++i) {
        for (ram::CutMode mode : {ram::CutMode::Before, ram::CutMode::Torn, ram::CutMode::After}) {
          CutPlan once;
          once.arm = cut_once;
          once.at = i;
          once.mode = mode;
          const Run r = run(layout, health_ok, &once, nullptr);
          if (!TT_EXPECT(r.ok)) {
            log_failure(r, layout, i, static_cast<uint32_t>(mode));
            return;
          }
          // The armed cut fired, and the update still completes (or the failed trial still reverts) after it.
          TT_EXPECT_EQ(r.cuts_fired, 1);
          TT_EXPECT(r.final_new == health_ok);
          if (!health_ok) TT_EXPECT(r.final_state == BootState::Reverted);
          ++cuts;
          ++(health_ok ? in_updates : (i < install_ops ? in_installs_reverted : in_reverts));
        }
      }
    }
  }
  tt::log("  [powercut] ");
  tt::log_u32(cuts);
  tt::log(" cut points covered (");
  tt::log_u32(in_updates);
  tt::log(" in updates that confirm, ");
  tt::log_u32(in_installs_reverted);
  tt::log(" in the install of updates that revert, ");
  tt::log_u32(in_reverts);
  tt::log(" in the reverts' own operations) over ");
  tt::log_u32(configs);
  tt::log(" flash configurations (geometry, granularity, erased value), each cut before, torn and after\n");
  TT_EXPECT_EQ(configs, kLayoutCount);
  TT_EXPECT(cuts > kLayoutCount * 2 * 3 * 10);
}

TT_TEST(PowerCut, RepeatedRandomCutsDuringRecovery) {
  static std::minstd_rand rng(20261125);
  uint32_t lives = 0, cuts = 0;
  for (const Layout& layout : kLayouts) {
    for (int life = 0; life < kRandomLivesPerLayout; ++life) {
      const bool health_ok = life % 3 != 0;
      CutPlan random;
      random.arm = random_cuts;
      random.rng = &rng;
      random.left = 1 + static_cast<int>(rng() % 4);
      const Run r = run(layout, health_ok, &random, nullptr);
      if (!TT_EXPECT(r.ok)) {
        log_failure(r, layout, 0, 0);
        return;
      }
      if (!health_ok) TT_EXPECT(!r.final_new);
      if (!r.final_new) TT_EXPECT(r.final_state == BootState::Reverted);  // old again only through a revert
      // Every armed cut fired, but the last one when the device settled before reaching it.
      TT_EXPECT_EQ(r.cuts_fired + (r.still_armed ? 1 : 0), random.armed);
      cuts += r.cuts_fired;
      ++lives;
    }
  }
  tt::log("  [powercut] ");
  tt::log_u32(lives);
  tt::log(" device lives with ");
  tt::log_u32(cuts);
  tt::log(" power cuts that fired (during update, boot and recovery)\n");
  TT_EXPECT(cuts > 0);
}
