// Power cuts through the whole agent, on all 24 flash configurations (support/flash_configs.h: the
// boot-level matrix of portable/test_powercut.cpp), in two sweeps whose cut points are counted apart:
//   - install: every flash operation of an update (download with copies, progress records, trial install,
//     the trial boot, confirm), from the provisioned device;
//   - revert: every flash operation from the trial boot of an installed update whose health check fails
//     (the boot's attempt count, the revert, the boot of the old image and the bundle's refusal).
// Each operation is torn (at a seeded random length) and cut right after it, the first one also before it (a
// cut before operation i leaves the flash as the cut after i - 1 does); the armed cut must fire. After every
// cut the device reboots: boot selection must find a verified image (old or new, never neither), and the
// agent, fed the same retained messages, must end where the uncut run ends.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>

#include "agent_harness.h"
#include "support/flash_configs.h"

using namespace tinyfleet;
using agenttest::Broker;
using agenttest::Bytes;
using agenttest::Device;
using agenttest::Published;
using tinyfleet::host::CutMode;
using tftest::FlashConfig;

namespace {

// Small bundles, so that every configuration runs fast: the update downloads a 2-block firmware, a 1-block
// model and its health vectors, and copies thresholds and calibration from the old bank.
tftest::BundleSpec matrix_spec(uint32_t seed, uint32_t counter) {
  tftest::BundleSpec s = agenttest::spec(seed, counter);
  s.payloads[0] = tftest::pattern(4500 + seed, seed * 7 + 1);
  s.payloads[1] = tftest::pattern(1500, seed * 7 + 2);
  return s;
}

struct Bundles {
  Bytes old_bundle, new_bundle;
};

const Bundles& bundles() {
  static const Bundles b = [] {
    Device signer_only;
    Bundles out;
    const tftest::BundleSpec old_spec = matrix_spec(1, 1);
    tftest::BundleSpec s = matrix_spec(2, 2);
    s.payloads[2] = old_spec.payloads[2];  // thresholds and calibration are copied, not downloaded
    s.payloads[3] = old_spec.payloads[3];
    out.old_bundle = signer_only.make_bundle(old_spec);
    out.new_bundle = signer_only.make_bundle(s);
    return out;
  }();
  return b;
}

using Areas = std::vector<Bytes>;

Areas save(Device& d) {
  Areas a;
  for (uint8_t i = 0; i < kFlashAreaCount; ++i) a.push_back(d.flash.raw(static_cast<FlashArea>(i)));
  return a;
}

// Where a sweep starts: the flash, the broker's retained messages, and the digests of both images.
struct Start {
  Areas flash;
  Broker broker;
  Bytes old_digest, new_digest;
  uint64_t ops_before = 0;  // flash operations from the provisioned device to here
};

struct Run {
  Broker broker;
  Device dev;
  const Start& start;
  Run(const FlashConfig& cfg, const Start& s, bool unhealthy)
      : broker(s.broker), dev(tftest::agent_layout(cfg)), start(s) {
    dev.broker = &broker;
    dev.inference.always_wrong = unhealthy;
    for (uint8_t i = 0; i < kFlashAreaCount; ++i) dev.flash.raw(static_cast<FlashArea>(i)) = s.flash[i];
  }
  bool running(const Bytes& digest) const {
    return dev.agent != nullptr && std::memcmp(dev.agent->running_digest(), digest.data(), 32) == 0;
  }
  // Boot and drive until the update ends: the new image confirmed, or, when the new image is unhealthy, the
  // old image running and the bundle refused as PreviouslyFailed. Every boot must find a verified image.
  void drive() {
    dev.reboot_requested = true;
    for (int round = 0; round < 12; ++round) {
      if (!dev.flash.powered() || dev.reboot_requested) {
        dev.boot();  // throws if no image verifies
        ASSERT_TRUE(running(start.new_digest) || running(start.old_digest)) << "boot " << round << " runs neither";
      }
      dev.connect();
      const bool settled = dev.flash.powered() && !dev.reboot_requested;
      if (settled && dev.state() == AgentState::Idle && running(start.new_digest)) return;
      if (settled && dev.state() == AgentState::Failed) {
        if (dev.agent->last_reason() == Reason::PreviouslyFailed && running(start.old_digest)) return;
        FAIL() << "update failed with reason " << static_cast<int>(dev.agent->last_reason());
      }
      if (dev.flash.powered() && !dev.reboot_requested) dev.disconnect();
    }
    FAIL() << "update did not finish";
  }
};

// The provisioned device with the update published (the install sweep's start).
Start provisioned(const FlashConfig& cfg) {
  Start s;
  Device dev(tftest::agent_layout(cfg));
  dev.provision(bundles().old_bundle);
  Published p = s.broker.publish_bundle(bundles().new_bundle, dev.crypto);
  s.broker.publish_desired("dev-0001", 1, p);
  const Published o = Broker().publish_bundle(bundles().old_bundle, dev.crypto);  // for its digest only
  s.old_digest.assign(o.digest, o.digest + 32);
  s.new_digest.assign(p.digest, p.digest + 32);
  s.flash = save(dev);
  return s;
}

struct Sweep {
  uint64_t ops = 0;
  uint32_t cut_points = 0;
};

// Cuts at the first `cut_ops` flash operations (all of them by default) of the uncut run from `start`
// (which counts them), each torn and after, the first also before. The uncut run must end on the new image
// (healthy) or the old one (unhealthy).
Sweep sweep(const FlashConfig& cfg, const Start& start, bool unhealthy, std::mt19937& rng,
            uint64_t cut_ops = UINT64_MAX) {
  Sweep out;
  {
    Run clean(cfg, start, unhealthy);
    const uint64_t first = clean.dev.flash.op_count();
    clean.drive();
    if (::testing::Test::HasFatalFailure()) return out;
    EXPECT_TRUE(clean.running(unhealthy ? start.old_digest : start.new_digest)) << cfg.name();
    out.ops = clean.dev.flash.op_count() - first;
  }
  for (uint64_t i = 0; i < std::min(out.ops, cut_ops); ++i) {
    for (CutMode mode : {CutMode::Before, CutMode::Torn, CutMode::After}) {
      // A cut before operation i leaves the flash exactly as the cut after operation i - 1 (the device
      // restarts from flash alone): only the first operation from the provisioned device is also cut before.
      if (mode == CutMode::Before && (i != 0 || start.ops_before != 0)) continue;
      Run r(cfg, start, unhealthy);
      const uint32_t per_mille = static_cast<uint32_t>(rng() % 1001);
      r.dev.flash.cut_power_at(i, mode, per_mille);
      try {
        r.drive();
      } catch (const std::exception& e) {
        ADD_FAILURE() << cfg.name() << " cut at op " << i << " mode " << static_cast<int>(mode) << ": " << e.what();
        return out;
      }
      if (::testing::Test::HasFatalFailure()) {
        ADD_FAILURE() << cfg.name() << " cut at op " << i << " mode " << static_cast<int>(mode) << " torn "
                      << per_mille << "/1000";
        return out;
      }
      EXPECT_EQ(r.dev.flash.cuts_fired(), 1u) << cfg.name() << " op " << i << ": the armed cut did not fire";
      EXPECT_TRUE(r.running(unhealthy ? start.old_digest : start.new_digest))
          << cfg.name() << " cut at op " << i << " mode " << static_cast<int>(mode);
      ++out.cut_points;
    }
  }
  return out;
}

// The installed update about to boot as a trial (the revert sweep's start): the uncut install from
// `provisioned`, stopped at its reboot request.
Start installed(const FlashConfig& cfg, const Start& provisioned_start) {
  Run r(cfg, provisioned_start, false);
  const uint64_t first = r.dev.flash.op_count();
  r.dev.boot();
  r.dev.connect();
  EXPECT_TRUE(r.dev.reboot_requested) << cfg.name() << ": the install did not ask for the trial boot";
  Start s;
  s.broker = provisioned_start.broker;
  s.old_digest = provisioned_start.old_digest;
  s.new_digest = provisioned_start.new_digest;
  s.flash = save(r.dev);
  s.ops_before = r.dev.flash.op_count() - first;
  MetadataStore store(r.dev.flash);
  MetadataRecord rec;
  EXPECT_EQ(store.load(rec), Status::Ok);
  EXPECT_EQ(rec.state, BootState::Trial) << cfg.name();
  return s;
}

}  // namespace

TEST(UpdatePowerCut, EveryCutOfAnAgentInstallAndOfARevertOnEveryFlashConfiguration) {
  std::mt19937 rng(20261206);
  Sweep install_total, revert_total;
  uint64_t install_min = UINT64_MAX, install_max = 0, revert_min = UINT64_MAX, revert_max = 0;
  const auto configs = tftest::all_flash_configs();
  for (const FlashConfig& cfg : configs) {
    // The install sweep in two parts: the operations up to the trial's reboot, from the provisioned device;
    // then those of the trial boot and confirm, from the installed trial (the same state the uncut install
    // reaches there: the device restarts from flash and the retained messages alone), so that the runs
    // cut after the trial boot do not download again.
    const Start from_provisioned = provisioned(cfg);
    const Start from_trial = installed(cfg, from_provisioned);
    if (::testing::Test::HasFailure()) return;
    Sweep install = sweep(cfg, from_provisioned, false, rng, from_trial.ops_before);
    const Sweep trial = sweep(cfg, from_trial, false, rng);
    if (::testing::Test::HasFailure()) return;
    ASSERT_EQ(from_trial.ops_before + trial.ops, install.ops) << cfg.name() << ": the two parts are the install";
    install.cut_points += trial.cut_points;
    const Sweep revert = sweep(cfg, from_trial, true, rng);
    if (::testing::Test::HasFailure()) return;
    install_total.ops += install.ops;
    install_total.cut_points += install.cut_points;
    revert_total.ops += revert.ops;
    revert_total.cut_points += revert.cut_points;
    install_min = std::min(install_min, install.ops);
    install_max = std::max(install_max, install.ops);
    revert_min = std::min(revert_min, revert.ops);
    revert_max = std::max(revert_max, revert.ops);
  }
  std::printf("[powercut] agent install (download, trial install, trial boot, confirm) on %zu flash configurations: "
              "%llu flash ops (%llu to %llu each), %u cut points, every run ended on the new image\n",
              configs.size(), static_cast<unsigned long long>(install_total.ops),
              static_cast<unsigned long long>(install_min), static_cast<unsigned long long>(install_max),
              install_total.cut_points);
  std::printf("[powercut] agent revert (trial boot, failed health check, revert, old image boots, bundle refused) "
              "on %zu flash configurations: %llu flash ops (%llu to %llu each), %u cut points, every run ended on "
              "the old image\n",
              configs.size(), static_cast<unsigned long long>(revert_total.ops),
              static_cast<unsigned long long>(revert_min), static_cast<unsigned long long>(revert_max),
              revert_total.cut_points);
}
