// Power cut at every flash operation of a whole agent-driven update (download with copies, progress
// records, trial install, trial boot, confirm): before the operation, torn in the middle of it, and right
// after it. After every cut the device reboots: boot selection must find a verified image (old or new,
// never neither), and the agent, fed the same retained messages, must finish the update.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "agent_harness.h"

using namespace tinyfleet;
using agenttest::Broker;
using agenttest::Bytes;
using agenttest::Device;
using agenttest::Published;
using tinyfleet::host::CutMode;

namespace {

struct Run {
  Broker broker;
  Device dev;
  Bytes old_digest;
  Published p;
  explicit Run(const tinyfleet::host::FlashLayout& layout) : dev(layout) {
    dev.broker = &broker;
    auto old_spec = agenttest::spec(1);
    dev.provision(dev.make_bundle(old_spec));
    dev.boot();
    dev.connect();
    old_digest.assign(dev.agent->running_digest(), dev.agent->running_digest() + 32);
    auto s = agenttest::spec(2, 2);
    s.payloads[2] = old_spec.payloads[2];  // thresholds and calibration are copied, not downloaded
    s.payloads[3] = old_spec.payloads[3];
    p = broker.publish_bundle(dev.make_bundle(s), dev.crypto);
    broker.publish_desired("dev-0001", 1, p);
    dev.disconnect();
  }
  bool running_new() const { return std::memcmp(dev.agent->running_digest(), p.digest, 32) == 0; }
  bool running_old() const { return std::memcmp(dev.agent->running_digest(), old_digest.data(), 32) == 0; }
  // Drive until the update ends (new image confirmed, or, when the new image is unhealthy, the old image
  // running and the bundle refused as PreviouslyFailed); every boot must find a verified image.
  void drive() {
    for (int round = 0; round < 12; ++round) {
      if (!dev.flash.powered() || dev.reboot_requested) {
        dev.boot();  // throws if no image verifies
        ASSERT_TRUE(running_new() || running_old()) << "boot " << round << " runs neither image";
      }
      dev.connect();
      const bool settled = dev.flash.powered() && !dev.reboot_requested;
      if (settled && dev.state() == AgentState::Idle && running_new()) return;
      if (settled && dev.state() == AgentState::Failed) {
        if (dev.agent->last_reason() == Reason::PreviouslyFailed && running_old()) return;
        FAIL() << "update failed with reason " << static_cast<int>(dev.agent->last_reason());
      }
      if (dev.flash.powered() && !dev.reboot_requested) dev.disconnect();
    }
    FAIL() << "update did not finish";
  }
};

void sweep(const tinyfleet::host::FlashLayout& layout, const char* name, bool unhealthy) {
  uint64_t ops = 0;
  {
    Run clean(layout);
    clean.dev.inference.always_wrong = unhealthy;
    const uint64_t start = clean.dev.flash.op_count();
    clean.drive();
    ASSERT_EQ(clean.running_new(), !unhealthy);
    ops = clean.dev.flash.op_count() - start;
    if (std::getenv("TINYFLEET_PRINT_OPS") != nullptr) {
      for (uint64_t i = start; i < clean.dev.flash.op_count(); ++i) {
        const auto& op = clean.dev.flash.ops()[i];
        std::printf("op %llu: %s area %d offset %u len %u\n", static_cast<unsigned long long>(i - start),
                    op.kind == tinyfleet::host::FlashOpKind::Write ? "write" : "erase", static_cast<int>(op.area),
                    op.offset, op.len);
      }
    }
  }
  ASSERT_GT(ops, 10u);
  int cuts = 0;
  for (uint64_t i = 0; i < ops; ++i) {
    for (CutMode mode : {CutMode::Before, CutMode::Torn, CutMode::After}) {
      Run r(layout);
      r.dev.inference.always_wrong = unhealthy;
      r.dev.flash.cut_power_at(i, mode);
      try {
        r.drive();
      } catch (const std::exception& e) {
        FAIL() << name << " cut at op " << i << " mode " << static_cast<int>(mode) << ": " << e.what();
      }
      ASSERT_EQ(r.running_new(), !unhealthy) << name << " cut at op " << i << " mode " << static_cast<int>(mode);
      ++cuts;
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  std::printf("[powercut] agent %s on %s: %llu flash ops, %d cut points, every run ended on the %s image\n",
              unhealthy ? "update + revert" : "update", name, static_cast<unsigned long long>(ops), cuts,
              unhealthy ? "old" : "new");
}

}  // namespace

TEST(UpdatePowerCut, EveryCutDuringAnAgentUpdateStillConverges) {
  sweep(tinyfleet::host::FlashLayout::dual_bank(4096, 16, 8, 0xFF, 2), "4 KiB sectors, 8-byte writes, 0xFF", false);
  sweep(tinyfleet::host::FlashLayout::dual_bank(8192, 8, 16, 0x00, 2), "8 KiB sectors, 16-byte writes, 0x00", false);
  sweep(tinyfleet::host::FlashLayout::dual_bank(4096, 32, 1, 0xFF, 2), "4 KiB sectors, 1-byte writes, 0xFF", false);
}

TEST(UpdatePowerCut, EveryCutDuringAnUpdateThatRevertsEndsOnTheOldImage) {
  sweep(tinyfleet::host::FlashLayout::dual_bank(4096, 16, 8, 0xFF, 2), "4 KiB sectors, 8-byte writes, 0xFF", true);
  sweep(tinyfleet::host::FlashLayout::dual_bank(8192, 8, 4, 0x00, 2), "8 KiB sectors, 4-byte writes, 0x00", true);
}
