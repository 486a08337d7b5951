// Exhaustive power-cut test (issue 4, section 3). For each flash geometry, write granularity and erased
// value: run a clean update of a multi-component bundle (and a clean revert) and count its flash
// operations; then rerun it with the power cut at operation i, for every i, before the operation, torn in
// the middle of it, and right after it. After each cut the device reboots (boot selection) and the update
// continues. Every boot must run a verified image that is exactly the old or exactly the new bundle.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <random>

#include "flash_emulator.h"
#include "mbedtls_crypto.h"
#include "support/bundle_builder.h"
#include "support/update_driver.h"
#include "tinyfleet/boot.h"

using namespace tinyfleet;
using host::CutMode;
using host::FlashEmulator;
using host::FlashLayout;

namespace {

struct Geometry {
  uint32_t sector_size;
  uint32_t bank_sectors;
};

constexpr Geometry kGeometries[] = {{256, 32}, {1024, 8}, {4096, 2}};
constexpr uint32_t kGranularities[] = {1, 4, 8, 16};
constexpr uint8_t kErasedValues[] = {0xFF, 0x00};
constexpr uint32_t kBlock = 256;

struct Bundles {
  host::MbedtlsCrypto crypto;
  tftest::Image old_image, new_image;
  Bundles() {
    auto old_spec = tftest::small_spec(11);
    auto new_spec = tftest::small_spec(12);
    new_spec.payloads[1] = old_spec.payloads[1];  // unchanged model: the update copies it bank to bank
    new_spec.security_counter = 2;
    old_image = tftest::make_image(tftest::build_bundle(old_spec, nullptr), crypto);
    new_image = tftest::make_image(tftest::build_bundle(new_spec, nullptr), crypto);
  }
};

struct Outcome {
  bool ok = true;
  std::string failure;
  int boots = 0;
  bool final_new = false;
  BootState final_state = BootState::Confirmed;
};

// One device life: provision old, then (with an optional cut armed) update to new; the trial's health
// check passes or fails. Returns after the device settles (new confirmed, or old after a revert).
// `arm` is called once before the update starts and after every reboot, to schedule the next cut.
using ArmCut = std::function<void(FlashEmulator&, bool after_reboot)>;

Outcome run(const Bundles& b, const FlashLayout& layout, bool health_ok, const ArmCut& arm, uint64_t* clean_ops) {
  host::MbedtlsCrypto crypto;
  FlashEmulator flash(layout);
  BootSelector boot(flash, crypto, 3);
  Outcome out;
  auto fail = [&](const std::string& why) {
    out.ok = false;
    out.failure = why;
    return out;
  };
  if (tftest::write_image(flash, crypto, 0, b.old_image, kBlock) != Status::Ok ||
      boot.provision(0, b.old_image.desc) != Status::Ok)
    return fail("provisioning failed");
  const uint64_t base = flash.op_count();
  if (arm) arm(flash, false);

  for (int step = 0; step < 32; ++step) {
    if (!flash.powered()) {
      flash.power_on();  // reboot
      if (arm) arm(flash, true);
    }
    BootDecision d;
    Status s = boot.select(d);
    if (s == Status::PowerLost) continue;
    if (s != Status::Ok) return fail(std::string("boot selection: ") + status_name(s));
    ++out.boots;
    // The image about to run is exactly one of the two bundles, never neither, never a mix.
    const bool is_old = tftest::bank_holds(flash, d.bank, b.old_image);
    const bool is_new = tftest::bank_holds(flash, d.bank, b.new_image);
    if (is_old == is_new) return fail("booted bank holds neither bundle exactly");
    if (d.trial) {
      s = health_ok ? boot.confirm() : boot.revert();
      if (s != Status::Ok && s != Status::PowerLost) return fail(std::string("confirm/revert: ") + status_name(s));
      continue;  // reboot into the result
    }
    if (is_new || d.record.state == BootState::Reverted) {
      out.final_new = is_new;
      out.final_state = d.record.state;
      if (clean_ops != nullptr) *clean_ops = flash.op_count() - base;
      return out;
    }
    s = tftest::install_update(flash, crypto, boot, b.new_image, kBlock);
    if (s != Status::Ok && s != Status::PowerLost) return fail(std::string("install: ") + status_name(s));
  }
  return fail("did not settle within 32 boots");
}

}  // namespace

TEST(PowerCut, EveryCutPointBootsTheOldOrTheNewImage) {
  Bundles b;
  uint64_t total_cuts = 0, configs = 0, runs_update = 0, runs_revert = 0;
  for (const Geometry& g : kGeometries) {
    for (uint32_t align : kGranularities) {
      for (uint8_t erased : kErasedValues) {
        const FlashLayout layout = FlashLayout::dual_bank(g.sector_size, g.bank_sectors, align, erased);
        ++configs;
        for (bool health_ok : {true, false}) {
          uint64_t n = 0;
          Outcome clean = run(b, layout, health_ok, nullptr, &n);
          ASSERT_TRUE(clean.ok) << clean.failure;
          ASSERT_EQ(clean.final_new, health_ok);
          ASSERT_GT(n, 5u);
          for (uint64_t i = 0; i < n; ++i) {
            for (CutMode mode : {CutMode::Before, CutMode::Torn, CutMode::After}) {
              ArmCut once = [&](FlashEmulator& f, bool after_reboot) {
                if (!after_reboot) f.cut_power_at(i, mode);
              };
              Outcome o = run(b, layout, health_ok, once, nullptr);
              ASSERT_TRUE(o.ok) << o.failure << " (sector " << g.sector_size << ", granularity " << align
                                << ", erased 0x" << std::hex << int(erased) << std::dec << ", health "
                                << health_ok << ", op " << i << "/" << n << ", mode " << int(mode) << ")";
              // The update still completes (or the failed trial still reverts) after the cut.
              EXPECT_EQ(o.final_new, health_ok) << "op " << i << " mode " << int(mode);
              if (!health_ok) {
                EXPECT_EQ(o.final_state, BootState::Reverted);
              }
              ++total_cuts;
              ++(health_ok ? runs_update : runs_revert);
            }
          }
        }
      }
    }
  }
  std::printf("[powercut] %llu cut points covered (%llu in updates, %llu in reverts) over %llu configurations "
              "(3 geometries x granularities 1/4/8/16 x erased 0xFF/0x00), each cut before, torn and after\n",
              static_cast<unsigned long long>(total_cuts), static_cast<unsigned long long>(runs_update),
              static_cast<unsigned long long>(runs_revert), static_cast<unsigned long long>(configs));
  EXPECT_EQ(configs, 24u);
  EXPECT_GT(total_cuts, 24u * 2 * 3 * 10);
}

// Cuts during recovery too: up to four cuts per device life, each at a random later operation (including
// the boot-time metadata writes and the re-download after a reboot), with a random torn fraction.
TEST(PowerCut, RepeatedRandomCutsDuringRecovery) {
  Bundles b;
  std::mt19937 rng(20261125);
  uint64_t lives = 0, cuts = 0;
  for (const Geometry& g : kGeometries) {
    for (uint32_t align : kGranularities) {
      for (uint8_t erased : kErasedValues) {
        const FlashLayout layout = FlashLayout::dual_bank(g.sector_size, g.bank_sectors, align, erased);
        for (int life = 0; life < 20; ++life) {
          const bool health_ok = life % 3 != 0;
          int left = 1 + static_cast<int>(rng() % 4);
          ArmCut random_cuts = [&](FlashEmulator& f, bool after_reboot) {
            if (after_reboot) ++cuts;  // the previous cut fired
            if (left-- <= 0) return;
            f.cut_power_at(rng() % 40, static_cast<CutMode>(rng() % 3), rng() % 1001);
          };
          Outcome o = run(b, layout, health_ok, random_cuts, nullptr);
          ASSERT_TRUE(o.ok) << o.failure << " (sector " << g.sector_size << ", granularity " << align << ", life "
                            << life << ")";
          if (!health_ok) {
            EXPECT_FALSE(o.final_new);
          }
          if (!o.final_new) {
            EXPECT_EQ(o.final_state, BootState::Reverted);  // old again only through a revert
          }
          ++lives;
        }
      }
    }
  }
  std::printf("[powercut] %llu device lives with %llu power cuts that fired (during update, boot and recovery)\n",
              static_cast<unsigned long long>(lives), static_cast<unsigned long long>(cuts));
}
