// What a refused bundle must leave exactly as it was, for any refusal test to reuse: both boot-metadata
// copies byte for byte (and so the stored security counter), the running bank's bytes, and the bank that
// boots: the agent asks for no reboot, and a reboot runs the same bank and image, not on trial.
//
//   const agenttest::TrustedState before = agenttest::capture(dev);
//   ... deliver the bundle, check the refusal's reason ...
//   EXPECT_TRUE(agenttest::unchanged_after_refusal(dev, before)) << "case name";
#pragma once

#include <gtest/gtest.h>

#include <cstring>

#include "agent_harness.h"
#include "tinyfleet/metadata.h"

namespace agenttest {

struct TrustedState {
  Bytes meta0, meta1;      // both metadata copies, the whole area
  uint32_t counter = 0;    // the stored security counter (in the metadata)
  uint8_t bank = 0;        // the confirmed bank
  Bytes running_bank;      // its bytes
  Bytes running_digest;    // the running image's prefix digest, as the agent reports it
};

inline TrustedState capture(Device& dev) {
  using namespace tinyfleet;
  TrustedState s;
  s.meta0 = dev.flash.raw(FlashArea::Meta0);
  s.meta1 = dev.flash.raw(FlashArea::Meta1);
  MetadataStore store(dev.flash);
  MetadataRecord rec;
  if (store.load(rec) == Status::Ok) {
    s.counter = rec.security_counter;
    s.bank = rec.confirmed_bank;
  }
  s.running_bank = dev.flash.raw(bank_area(s.bank));
  s.running_digest.assign(dev.agent->running_digest(), dev.agent->running_digest() + 32);
  return s;
}

// Compares the device with `before`, then reboots it (flash persists) and checks what boots.
inline ::testing::AssertionResult unchanged_after_refusal(Device& dev, const TrustedState& before) {
  using namespace tinyfleet;
  if (!dev.flash.powered()) return ::testing::AssertionFailure() << "the device lost power";
  if (dev.reboot_requested) return ::testing::AssertionFailure() << "the agent asked for a reboot";
  if (dev.flash.raw(FlashArea::Meta0) != before.meta0) return ::testing::AssertionFailure() << "Meta0 changed";
  if (dev.flash.raw(FlashArea::Meta1) != before.meta1) return ::testing::AssertionFailure() << "Meta1 changed";
  MetadataStore store(dev.flash);
  MetadataRecord rec;
  if (store.load(rec) != Status::Ok) return ::testing::AssertionFailure() << "no valid metadata";
  if (rec.security_counter != before.counter)
    return ::testing::AssertionFailure() << "stored counter " << before.counter << " became " << rec.security_counter;
  if (rec.state == BootState::Trial || rec.confirmed_bank != before.bank)
    return ::testing::AssertionFailure() << "bank switch: state " << static_cast<int>(rec.state) << ", confirmed bank "
                                         << static_cast<int>(rec.confirmed_bank);
  if (dev.flash.raw(bank_area(before.bank)) != before.running_bank)
    return ::testing::AssertionFailure() << "the running bank's bytes changed";
  dev.boot();  // throws if nothing verifies
  if (std::memcmp(dev.agent->running_digest(), before.running_digest.data(), 32) != 0)
    return ::testing::AssertionFailure() << "after a reboot another image runs";
  if (dev.state() == AgentState::Trial) return ::testing::AssertionFailure() << "after a reboot the device is on trial";
  if (dev.flash.raw(FlashArea::Meta0) != before.meta0 || dev.flash.raw(FlashArea::Meta1) != before.meta1)
    return ::testing::AssertionFailure() << "the reboot after the refusal changed the metadata";
  return ::testing::AssertionSuccess();
}

}  // namespace agenttest
