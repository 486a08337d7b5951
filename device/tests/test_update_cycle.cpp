// The whole update cycle through the agent, against the in-memory broker: download + copy, trial,
// health check, confirm or revert, trial exhaustion, downgrade and replay refusal, resume after a
// disconnect and after a reboot (also with a torn block), battery deferral, corrupt blocks.
#include <gtest/gtest.h>

#include <cstring>

#include "agent_harness.h"
#include "support/encodings.h"

using namespace tinyfleet;
using agenttest::Broker;
using agenttest::Bytes;
using agenttest::Device;
using agenttest::Published;

namespace {

struct Fleet : agenttest::BootedDevice {
  using BootedDevice::BootedDevice;
  // New bundle that shares thresholds and calibration with the old one (seed 1); firmware, model and
  // health vectors are new.
  Bytes new_bundle(uint32_t seed = 2, uint32_t counter = 2) {
    auto s = agenttest::spec(seed, counter);
    auto old = agenttest::spec(1);
    s.payloads[2] = old.payloads[2];
    s.payloads[3] = old.payloads[3];
    return dev.make_bundle(s);
  }
};

bool same_digest(const uint8_t* a, const uint8_t* b) { return std::memcmp(a, b, 32) == 0; }

uint32_t blocks_of(const Published& p, int c) { return block_count(p.info.components[c].length); }

// Fleet::new_bundle changes firmware (0), model (1) and health vectors (4): the blocks fetched.
uint32_t changed_blocks(const Published& p) { return blocks_of(p, 0) + blocks_of(p, 1) + blocks_of(p, 4); }


}  // namespace

TEST(UpdateCycle, DownloadsChangedComponentsCopiesTheRestAndConfirms) {
  Fleet f;
  EXPECT_EQ(f.dev.state(), AgentState::Idle);
  f.dev.connect();
  Published p = f.broker.publish_bundle(f.new_bundle(), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 1, p);
  // The desired state arrives on the next subscription; reconnect to get it delivered.
  f.dev.disconnect();
  f.dev.connect();
  ASSERT_TRUE(f.dev.reboot_requested) << static_cast<int>(f.dev.state());
  EXPECT_EQ(f.dev.state(), AgentState::Rebooting);
  EXPECT_EQ(f.broker.reports_with(Reason::Staged).size(), 1u);

  // Only the changed components were fetched, each block exactly once; thresholds and calibration copied.
  for (int c : {0, 1, 4}) EXPECT_EQ(f.broker.block_subscriptions(p.info.components[c].sha256), blocks_of(p, c));
  for (int c : {2, 3}) EXPECT_EQ(f.broker.block_subscriptions(p.info.components[c].sha256), 0u) << c;
  EXPECT_EQ(f.dev.agent->blocks_fetched(), changed_blocks(p));

  f.dev.boot();  // trial boot: health check runs at once, confirm waits for the broker
  EXPECT_EQ(f.dev.state(), AgentState::Trial);
  f.dev.connect();
  EXPECT_EQ(f.dev.state(), AgentState::Idle);
  EXPECT_TRUE(same_digest(f.dev.agent->running_digest(), p.digest));
  ASSERT_EQ(f.broker.reports_with(Reason::Confirmed).size(), 1u);
  EXPECT_EQ(f.broker.reports_with(Reason::Confirmed)[0].desired_seq, 1u);

  f.dev.boot();  // confirmed image boots again, desired is up to date
  f.dev.connect();
  EXPECT_EQ(f.dev.state(), AgentState::Idle);
  EXPECT_TRUE(same_digest(f.dev.agent->running_digest(), p.digest));
  EXPECT_EQ(f.broker.reports_with(Reason::UpToDate).size(), 1u);
}

TEST(UpdateCycle, HealthCheckFailureBootsTheOldImageNext) {
  Fleet f;
  f.dev.connect();
  Bytes old_digest(f.dev.agent->running_digest(), f.dev.agent->running_digest() + 32);
  Published p = f.broker.publish_bundle(f.new_bundle(), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 1, p);
  f.dev.disconnect();
  f.dev.connect();
  ASSERT_TRUE(f.dev.reboot_requested);

  f.dev.inference.flip_output_at = f.dev.inference.calls + 2;  // third golden vector differs by one bit
  f.dev.boot();
  EXPECT_TRUE(f.dev.reboot_requested);  // revert + reboot requested
  EXPECT_EQ(f.dev.state(), AgentState::Rebooting);

  f.dev.boot();
  EXPECT_EQ(f.dev.state(), AgentState::Idle);
  EXPECT_TRUE(same_digest(f.dev.agent->running_digest(), old_digest.data()));
  f.dev.connect();
  // The revert is reported after the reboot with the health reason and the vector index.
  auto reverted = f.broker.reports_with(Reason::HealthOutputMismatch);
  ASSERT_FALSE(reverted.empty());
  EXPECT_EQ(reverted.back().detail0, 2u);
  EXPECT_EQ(reverted.back().to_state, static_cast<uint8_t>(AgentState::Idle));
  // The retained desired still names the failed bundle: not retried until a new desired_seq.
  EXPECT_EQ(f.dev.state(), AgentState::Failed);
  EXPECT_EQ(f.broker.reports_with(Reason::PreviouslyFailed).size(), 1u);
  f.broker.publish_desired("dev-0001", 2, p);  // operator retries explicitly
  f.dev.disconnect();
  f.dev.connect();
  EXPECT_TRUE(f.dev.reboot_requested);
}

TEST(UpdateCycle, LatencyAndRamBudgetsAreEnforced) {
  for (int which = 0; which < 2; ++which) {
    Fleet f;
    f.dev.connect();
    Published p = f.broker.publish_bundle(f.new_bundle(), f.dev.crypto);
    f.broker.publish_desired("dev-0001", 1, p);
    f.dev.disconnect();
    f.dev.connect();
    ASSERT_TRUE(f.dev.reboot_requested);
    if (which == 0) f.dev.inference.latency_us = 50001;  // bundle allows 50 ms
    if (which == 1) f.dev.inference.arena = 20001;       // bundle allows 20000 bytes
    f.dev.boot();
    f.dev.boot();
    f.dev.connect();
    Reason want = which == 0 ? Reason::HealthLatency : Reason::HealthRam;
    auto r = f.broker.reports_with(want);
    ASSERT_FALSE(r.empty()) << which;
    EXPECT_EQ(r.back().detail0, which == 0 ? 50001u : 20001u);
    EXPECT_EQ(r.back().detail1, which == 0 ? 50000u : 20000u);
    EXPECT_FALSE(same_digest(f.dev.agent->running_digest(), p.digest));
  }
}

TEST(UpdateCycle, TrialThatNeverConfirmsIsRevertedAfterMaxBoots) {
  Fleet f;
  f.dev.connect();
  Bytes old_digest(f.dev.agent->running_digest(), f.dev.agent->running_digest() + 32);
  Published p = f.broker.publish_bundle(f.new_bundle(), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 1, p);
  f.dev.disconnect();
  f.dev.connect();
  ASSERT_TRUE(f.dev.reboot_requested);
  f.dev.run_health = false;  // the new image hangs before its health check (watchdog reboots it)
  for (uint32_t i = 0; i < f.dev.max_trial_boots; ++i) {
    f.dev.boot();
    EXPECT_EQ(f.dev.state(), AgentState::Trial) << "boot " << i;
    EXPECT_TRUE(same_digest(f.dev.agent->running_digest(), p.digest));
  }
  f.dev.boot();
  EXPECT_EQ(f.dev.state(), AgentState::Idle);
  EXPECT_TRUE(same_digest(f.dev.agent->running_digest(), old_digest.data()));
  f.dev.connect();
  EXPECT_EQ(f.broker.reports_with(Reason::TrialExhausted).size(), 1u);
}

TEST(UpdateCycle, BrokerUnreachableAfterTrialBootReverts) {
  Fleet f;
  f.dev.connect();
  Published p = f.broker.publish_bundle(f.new_bundle(), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 1, p);
  f.dev.disconnect();
  f.dev.connect();
  f.dev.boot();
  EXPECT_EQ(f.dev.state(), AgentState::Trial);
  f.dev.tick(29999);
  EXPECT_EQ(f.dev.state(), AgentState::Trial);
  f.dev.tick(1);
  EXPECT_EQ(f.dev.state(), AgentState::Rebooting);
  EXPECT_EQ(f.dev.agent->last_reason(), Reason::HealthBrokerTimeout);
  f.dev.boot();
  EXPECT_FALSE(same_digest(f.dev.agent->running_digest(), p.digest));
}

TEST(UpdateCycle, DowngradeIsRefusedAndTheOldImageStays) {
  Fleet f(5);  // the running bundle has security counter 5
  f.dev.connect();
  Published p = f.broker.publish_bundle(f.new_bundle(2, 4), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 1, p);
  f.dev.disconnect();
  f.dev.connect();
  EXPECT_EQ(f.dev.state(), AgentState::Failed);
  auto r = f.broker.reports_with(Reason(17));  // CounterTooLow
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].detail0, 4u);
  EXPECT_EQ(r[0].detail1, 5u);
  EXPECT_EQ(f.broker.all_block_subscriptions(), 0u);  // refused before any payload
  EXPECT_FALSE(f.dev.reboot_requested);
}

TEST(UpdateCycle, ReplayedOlderBundleAndStaleDesiredAreRefused) {
  Fleet f(1);
  f.dev.connect();
  Published a = f.broker.publish_bundle(f.old_bundle, f.dev.crypto);
  Published b = f.broker.publish_bundle(f.new_bundle(2, 2), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 5, b);
  f.dev.disconnect();
  f.dev.connect();
  f.dev.boot();
  f.dev.connect();
  ASSERT_TRUE(same_digest(f.dev.agent->running_digest(), b.digest));
  // A replayed desired state with an older desired_seq: refused as stale.
  f.broker.publish_desired("dev-0001", 4, a);
  f.dev.disconnect();
  f.dev.connect();
  auto stale = f.broker.reports_with(Reason::StaleDesired);
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0].detail0, 4u);
  EXPECT_EQ(stale[0].detail1, 5u);
  // Even with a fresh desired_seq, the old bundle (counter 1 < stored 2) is refused: no rollback below
  // the counter.
  f.broker.publish_desired("dev-0001", 6, a);
  f.dev.disconnect();
  f.dev.connect();
  EXPECT_EQ(f.dev.state(), AgentState::Failed);
  EXPECT_EQ(f.broker.reports_with(Reason(17)).size(), 1u);
  EXPECT_TRUE(same_digest(f.dev.agent->running_digest(), b.digest));
}

TEST(UpdateCycle, ResumeAfterDisconnectFetchesOnlyMissingBlocks) {
  Fleet f;
  f.dev.connect();
  Published p = f.broker.publish_bundle(f.new_bundle(), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 1, p);
  f.dev.disconnect();
  f.dev.deliver_budget = 4;  // desired, meta, then two blocks; then the link drops
  f.dev.connect();
  EXPECT_FALSE(f.dev.connected);
  EXPECT_EQ(f.dev.state(), AgentState::Downloading);
  EXPECT_EQ(f.dev.agent->blocks_fetched(), 2u);
  f.dev.deliver_budget = -1;
  f.broker.subscribe_log.clear();
  f.dev.connect();
  ASSERT_TRUE(f.dev.reboot_requested);
  const uint32_t total = changed_blocks(p);
  EXPECT_EQ(f.broker.all_block_subscriptions(), total - 2);
  EXPECT_EQ(f.dev.agent->blocks_fetched(), total);
}

TEST(UpdateCycle, ResumeAfterRebootFetchesOnlyMissingBlocks) {
  Fleet f;
  f.dev.connect();
  Published p = f.broker.publish_bundle(f.new_bundle(), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 1, p);
  f.dev.disconnect();
  f.dev.deliver_budget = 5;  // desired, meta, three blocks
  f.dev.connect();
  ASSERT_EQ(f.dev.agent->blocks_fetched(), 3u);
  f.dev.deliver_budget = -1;
  f.dev.boot();  // power cycle: RAM state gone
  f.broker.subscribe_log.clear();
  f.dev.connect();
  ASSERT_TRUE(f.dev.reboot_requested);
  const uint32_t total = changed_blocks(p);
  EXPECT_EQ(f.broker.all_block_subscriptions(), total - 3);
  EXPECT_EQ(f.dev.agent->blocks_fetched(), total - 3);
  auto resumed = f.broker.reports_with(Reason::Resumed);
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0].detail1, blocks_of(p, 0) + blocks_of(p, 1) + blocks_of(p, 2) + blocks_of(p, 3) +
                                    blocks_of(p, 4));
  EXPECT_EQ(resumed[0].detail0, resumed[0].detail1 - (total - 3));
  f.dev.boot();
  f.dev.connect();
  EXPECT_TRUE(same_digest(f.dev.agent->running_digest(), p.digest));
}

TEST(UpdateCycle, PowerCutTearingABlockWriteResumesAndRefetchesIt) {
  Fleet f;
  f.dev.connect();
  Published p = f.broker.publish_bundle(f.new_bundle(), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 1, p);
  f.dev.disconnect();
  f.dev.deliver_budget = 3;  // desired, meta, one block
  f.dev.connect();
  ASSERT_EQ(f.dev.agent->blocks_fetched(), 1u);
  // The next flash op is the second block's write: tear it.
  f.dev.deliver_budget = -1;
  f.dev.flash.cut_power_at(0, tinyfleet::host::CutMode::Torn);
  f.dev.connect();
  ASSERT_FALSE(f.dev.flash.powered());
  ASSERT_EQ(f.dev.flash.cuts_fired(), 1u);
  EXPECT_EQ(f.dev.flash.ops().back().kind, tinyfleet::host::FlashOpKind::Write);  // the op torn: the block write
  EXPECT_EQ(f.dev.flash.ops().back().area, FlashArea::Bank1);
  f.dev.boot();
  f.dev.connect();
  ASSERT_TRUE(f.dev.reboot_requested);
  f.dev.boot();
  f.dev.connect();
  EXPECT_TRUE(same_digest(f.dev.agent->running_digest(), p.digest));
  EXPECT_EQ(f.dev.state(), AgentState::Idle);
}

TEST(UpdateCycle, CalibrationOnlyBundleDownloadsOnlyTheCalibration) {
  Fleet f;
  f.dev.connect();
  auto s = agenttest::spec(1, 1);
  s.bundle_id = "calibration-only";
  s.payloads[3] = tftest::pattern(44, 999);
  Published p = f.broker.publish_bundle(f.dev.make_bundle(s), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 1, p);
  f.dev.disconnect();
  f.dev.connect();
  ASSERT_TRUE(f.dev.reboot_requested);
  EXPECT_EQ(f.broker.all_block_subscriptions(), 1u);
  EXPECT_EQ(f.broker.block_subscriptions(p.info.components[3].sha256), 1u);
}

TEST(UpdateCycle, LowBatteryDefersAndRetries) {
  Fleet f;
  f.dev.power.pct = 10;  // bundle needs 20 %
  f.dev.connect();
  Published p = f.broker.publish_bundle(f.new_bundle(), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 1, p);
  f.dev.disconnect();
  f.dev.connect();
  EXPECT_EQ(f.dev.state(), AgentState::Deferred);
  auto low = f.broker.reports_with(Reason::BatteryLow);
  ASSERT_EQ(low.size(), 1u);
  EXPECT_EQ(low[0].detail0, 10u);
  EXPECT_EQ(low[0].detail1, 20u);
  f.dev.tick(30000);  // before the retry period: nothing
  EXPECT_EQ(f.broker.reports_with(Reason::BatteryLow).size(), 1u);
  f.dev.tick(30000);  // retry: still low
  EXPECT_EQ(f.dev.state(), AgentState::Deferred);
  EXPECT_EQ(f.broker.reports_with(Reason::BatteryLow).size(), 2u);
  f.dev.battery(15);  // still below: ignored
  EXPECT_EQ(f.dev.state(), AgentState::Deferred);
  EXPECT_EQ(f.broker.all_block_subscriptions(), 0u);
  f.dev.battery(21);
  EXPECT_TRUE(f.dev.reboot_requested);
}

TEST(UpdateCycle, CorruptBlockIsDroppedAndFetchedAgain) {
  Fleet f;
  f.dev.connect();
  Published p = f.broker.publish_bundle(f.new_bundle(), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 1, p);
  int corrupted = 0;
  f.dev.tamper = [&](const std::string& topic, Bytes& msg) {
    if (corrupted == 0 && topic.rfind("fleet/blobs/", 0) == 0) {
      msg[100] ^= 0x40;
      ++corrupted;
    }
  };
  f.dev.disconnect();
  f.dev.connect();
  EXPECT_EQ(f.dev.agent->bad_blocks(), 1u);
  ASSERT_TRUE(f.dev.reboot_requested);
  EXPECT_EQ(f.broker.all_block_subscriptions(), changed_blocks(p) + 1);
}

TEST(UpdateCycle, ComponentFailingItsHashThreeTimesFailsTheUpdate) {
  Fleet f;
  f.dev.connect();
  Published p = f.broker.publish_bundle(f.new_bundle(), f.dev.crypto);
  // A server bug: the model's block 0 carries other bytes under a valid CRC.
  char topic[kMaxTopicLen];
  block_topic(topic, p.info.components[1].sha256, 0);
  Bytes wrong(kBlockSize, 0x5A);
  Bytes msg(kBlockHeaderLen + kBlockSize);
  encode_block(0, p.info.components[1].length, wrong.data(), wrong.size(), msg.data(), msg.size());
  f.broker.retained[topic] = msg;
  f.broker.publish_desired("dev-0001", 1, p);
  f.dev.disconnect();
  f.dev.connect();
  EXPECT_EQ(f.dev.state(), AgentState::Failed);
  auto r = f.broker.reports_with(Reason::HashMismatch);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].detail0, 1u);
  EXPECT_EQ(f.broker.block_subscriptions(p.info.components[1].sha256), 3 * blocks_of(p, 1));
  EXPECT_FALSE(f.dev.reboot_requested);
}

TEST(UpdateCycle, MetaNotMatchingTheDesiredDigestIsRefused) {
  Fleet f;
  f.dev.connect();
  Published p = f.broker.publish_bundle(f.new_bundle(), f.dev.crypto);
  char topic[kMaxTopicLen];
  meta_topic(topic, p.digest);
  f.broker.retained[topic][40] ^= 1;
  f.broker.publish_desired("dev-0001", 1, p);
  f.dev.disconnect();
  f.dev.connect();
  EXPECT_EQ(f.dev.state(), AgentState::Failed);
  EXPECT_EQ(f.broker.reports_with(Reason::MetaMismatch).size(), 1u);
}

TEST(UpdateCycle, ReportsAreResentAfterReconnectUntilAcknowledged) {
  Fleet f;
  f.dev.connect();
  Published p = f.broker.publish_bundle(f.new_bundle(), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 1, p);
  f.dev.disconnect();
  f.broker.auto_ack = false;
  f.dev.deliver_budget = 2;  // desired, meta; then the link drops before any PUBACK
  const size_t before = f.broker.reports.size();
  f.dev.connect();
  const size_t sent = f.broker.reports.size() - before;
  ASSERT_EQ(sent, 2u);  // IDLE->CHECKING, CHECKING->DOWNLOADING
  EXPECT_EQ(f.dev.agent->pending_reports(), sent);
  f.broker.auto_ack = true;
  f.dev.deliver_budget = -1;
  f.dev.connect();
  // The unacknowledged ones again, byte for byte (the queue keeps them without the running digest and
  // puts it back), in order, before anything new.
  for (size_t i = 0; i < sent; ++i) {
    const StateReport& again = f.broker.reports[before + sent + i];
    const StateReport& first = f.broker.reports[before + i];
    uint8_t a[kReportLen], b[kReportLen];
    encode_report(again, a);
    encode_report(first, b);
    EXPECT_EQ(std::memcmp(a, b, kReportLen), 0) << i;
    EXPECT_EQ(again.seq, first.seq);
    EXPECT_TRUE(same_digest(again.running_digest, f.dev.agent->running_digest()));
  }
  EXPECT_EQ(f.broker.reports[before + 2 * sent].seq, f.broker.reports[before + sent - 1].seq + 1);
  EXPECT_EQ(f.dev.agent->pending_reports(), 0u);
  // A reboot starts a new epoch whose seq starts at 1.
  const uint32_t epoch = f.broker.reports.back().epoch;
  const size_t at = f.broker.reports.size();
  f.dev.boot();
  f.dev.connect();
  ASSERT_GT(f.broker.reports.size(), at);
  EXPECT_EQ(f.broker.reports[at].epoch, epoch + 1);
  EXPECT_EQ(f.broker.reports[at].seq, 1u);
}

TEST(UpdateCycle, GoingBackToTheBundleInTheInactiveBankFetchesNothing) {
  Fleet f(1);
  f.dev.connect();
  Published a = f.broker.publish_bundle(f.old_bundle, f.dev.crypto);
  Published b = f.broker.publish_bundle(f.new_bundle(2, 1), f.dev.crypto);  // same counter: rollback allowed
  f.broker.publish_desired("dev-0001", 1, b);
  f.dev.disconnect();
  f.dev.connect();
  f.dev.boot();
  f.dev.connect();
  ASSERT_TRUE(same_digest(f.dev.agent->running_digest(), b.digest));

  f.broker.subscribe_log.clear();
  f.broker.publish_desired("dev-0001", 2, a, kDesiredRollback);
  f.dev.disconnect();
  f.dev.connect();
  ASSERT_TRUE(f.dev.reboot_requested);
  EXPECT_EQ(f.broker.all_block_subscriptions(), 0u);  // the old image was verified in place
  auto staged = f.broker.reports_with(Reason::Staged);
  ASSERT_EQ(staged.size(), 2u);
  EXPECT_EQ(staged.back().from_state, static_cast<uint8_t>(AgentState::Checking));
  f.dev.boot();
  EXPECT_EQ(f.dev.state(), AgentState::Trial);
  f.dev.connect();
  EXPECT_EQ(f.dev.state(), AgentState::Idle);
  EXPECT_TRUE(same_digest(f.dev.agent->running_digest(), a.digest));
}

TEST(UpdateCycle, BundlesThePolicyRefusesFailBeforeAnyBlock) {
  struct Case {
    const char* name;
    Reason reason;
  };
  for (const Case& c : {Case{"wrong hardware class", Reason(14)}, Case{"other device", Reason(15)},
                        Case{"expired", Reason(16)}, Case{"unknown key", Reason(12)},
                        Case{"non-zero prefix padding", Reason(13)}, Case{"high-s signature", Reason(13)}}) {
    Fleet f;
    auto s = agenttest::spec(5, 2);
    if (c.reason == Reason(14)) s.hardware_class = "esp32s3";
    if (c.reason == Reason(15)) s.device_scope = "dev-0002";
    if (c.reason == Reason(16)) s.expires = f.dev.clock.unix;  // expired at exactly now
    tftest::TestSigner other("not-trusted");
    Bytes bundle = c.reason == Reason(12) ? tftest::build_bundle(s, &other) : f.dev.make_bundle(s);
    // The encodings that once gave one bundle a second digest (docs/bundle-format.md, "One bundle, one encoding").
    if (std::strcmp(c.name, "high-s signature") == 0) bundle = agenttest::with_high_s(bundle);
    Published p = f.broker.publish_bundle(bundle, f.dev.crypto);
    if (std::strcmp(c.name, "non-zero prefix padding") == 0) {  // a meta the broker's own parse would refuse
      Bytes meta(bundle.begin(), bundle.begin() + p.info.header.payload_offset);
      const uint32_t pad = agenttest::signed_len_of(bundle) + 96;
      ASSERT_LT(pad, meta.size()) << "the spec leaves no padding";
      meta[pad] = 0x01;
      sha256(f.dev.crypto, meta.data(), meta.size(), p.digest);
      char topic[kMaxTopicLen];
      meta_topic(topic, p.digest);
      f.broker.retained[topic] = meta;
    }
    f.broker.publish_desired("dev-0001", 1, p);
    f.dev.connect();
    EXPECT_EQ(f.dev.state(), AgentState::Failed) << c.name;
    EXPECT_EQ(f.dev.agent->last_reason(), c.reason) << c.name;
    EXPECT_EQ(f.broker.all_block_subscriptions(), 0u) << c.name;
  }
}

// The running bundle's content under another digest (its signed region signed again, with another nonce):
// nothing to install, whatever the file digest (docs/bundle-format.md, "Content").
TEST(UpdateCycle, TheRunningContentUnderAnotherDigestIsUpToDate) {
  Fleet f;
  const Bytes twin = agenttest::resigned(f.old_bundle, f.dev.signer);
  ASSERT_NE(twin, f.old_bundle);
  ASSERT_EQ(0, std::memcmp(twin.data(), f.old_bundle.data(), agenttest::signed_len_of(twin)));
  Published p = f.broker.publish_bundle(twin, f.dev.crypto);
  ASSERT_FALSE(same_digest(p.digest, f.dev.agent->running_digest()));
  f.broker.publish_desired("dev-0001", 1, p);
  f.dev.connect();
  EXPECT_EQ(f.dev.state(), AgentState::Idle);
  EXPECT_EQ(f.dev.agent->last_reason(), Reason::UpToDate);
  auto r = f.broker.reports_with(Reason::UpToDate);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].from_state, static_cast<uint8_t>(AgentState::Checking));
  EXPECT_TRUE(same_digest(r[0].target_digest, p.digest));
  EXPECT_EQ(f.broker.all_block_subscriptions(), 0u);
  EXPECT_FALSE(f.dev.reboot_requested);
  // A meta that differs in its signed region (another counter) is a new update, not this.
  Published next = f.broker.publish_bundle(f.new_bundle(), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 2, next);
  f.dev.disconnect();
  f.dev.connect();
  EXPECT_GT(f.broker.reports_with(Reason::Staged).size(), 0u);
  EXPECT_TRUE(f.dev.reboot_requested);
}

TEST(UpdateCycle, TrialWhoseHealthCheckNeverRunsIsRevertedAtTheDeadline) {
  Fleet f;
  f.dev.connect();
  Published p = f.broker.publish_bundle(f.new_bundle(), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 1, p);
  f.dev.disconnect();
  f.dev.connect();
  f.dev.run_health = false;  // the platform never runs the golden vectors
  f.dev.boot();
  f.dev.connect();  // the broker is reachable
  EXPECT_EQ(f.dev.state(), AgentState::Trial);
  f.dev.tick(30000);
  EXPECT_EQ(f.dev.state(), AgentState::Rebooting);
  EXPECT_EQ(f.dev.agent->last_reason(), Reason::HealthInference);
  f.dev.boot();
  EXPECT_FALSE(same_digest(f.dev.agent->running_digest(), p.digest));
}

TEST(UpdateCycle, AtMostEightUnacknowledgedReportsAreKeptTheOldestDropped) {
  Fleet f;
  Published p = f.broker.publish_bundle(f.old_bundle, f.dev.crypto);
  f.broker.publish_desired("dev-0001", 50, p);
  f.dev.connect();  // desired 50 (the running bundle) accepted: any lower desired_seq is stale
  ASSERT_EQ(f.dev.state(), AgentState::Idle);
  f.dev.disconnect();
  const size_t before = f.broker.reports.size();
  uint8_t msg[kDesiredLen];
  DesiredState d;
  std::memcpy(d.digest, p.digest, 32);
  d.total_len = p.info.header.total_len;
  char topic[kMaxTopicLen];
  device_topic(topic, "dev-0001", DeviceTopic::Desired);
  for (uint32_t s = 1; s <= 12; ++s) {  // 12 stale replays while offline: 12 reports, 8 kept
    d.desired_seq = s;
    encode_desired(d, msg);
    f.dev.agent->on_message(topic, std::strlen(topic), msg, kDesiredLen);
  }
  EXPECT_EQ(f.dev.agent->pending_reports(), 8u);
  f.broker.retained.erase(topic);  // nothing new on reconnect: only the queued reports go out
  f.dev.connect();
  std::vector<StateReport> sent(f.broker.reports.begin() + static_cast<long>(before), f.broker.reports.end());
  ASSERT_EQ(sent.size(), 8u);
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(sent[i].reason, static_cast<uint16_t>(Reason::StaleDesired));
    EXPECT_EQ(sent[i].detail0, 5u + i);  // replays 1..4 were dropped: the server sees the gap in seq
    if (i > 0) {
      EXPECT_EQ(sent[i].seq, sent[i - 1].seq + 1);
    }
  }
}

TEST(UpdateCycle, ComponentRefetchedAfterAHashMismatchConverges) {
  // One block arrives once with other bytes under a valid CRC: its component fails its hash and is fetched
  // again. On several sector sizes (blocks straddle sectors shared with neighbours), for each block of the
  // firmware and the model, the download must end and the new image boot.
  int cases = 0;
  for (uint32_t sector : {4096u, 2048u, 1024u}) {
    for (int comp : {0, 1}) {
      for (uint32_t bad_block : {0u, 1u, 2u}) {
        Broker broker;
        Device dev(tinyfleet::host::FlashLayout::dual_bank(sector, 65536 / sector, 8, 0xFF, 8192 / sector));
        dev.broker = &broker;
        dev.provision(dev.make_bundle(agenttest::spec(1, 1)));
        dev.boot();
        dev.connect();
        auto s = agenttest::spec(2, 2);
        auto old = agenttest::spec(1);
        s.payloads[2] = old.payloads[2];
        s.payloads[3] = old.payloads[3];
        Published p = broker.publish_bundle(dev.make_bundle(s), dev.crypto);
        const ComponentEntry& e = p.info.components[comp];
        if (bad_block >= block_count(e.length)) continue;
        char topic[kMaxTopicLen];
        block_topic(topic, e.sha256, bad_block);
        int wrong_sent = 0;
        dev.tamper = [&](const std::string& t, Bytes& msg) {
          if (wrong_sent == 0 && t == topic) {
            Bytes wrong(block_data_len(e.length, bad_block), 0x5A);
            msg.assign(kBlockHeaderLen + wrong.size(), 0);
            encode_block(bad_block, e.length, wrong.data(), wrong.size(), msg.data(), msg.size());
            ++wrong_sent;
          }
        };
        broker.publish_desired("dev-0001", 1, p);
        dev.disconnect();
        dev.deliver_budget = 300;  // far more than the update needs; a refetch loop would use them all
        dev.connect();
        const std::string where = "sector " + std::to_string(sector) + ", component " + std::to_string(comp) +
                                  ", block " + std::to_string(bad_block);
        EXPECT_EQ(wrong_sent, 1) << where;
        ASSERT_TRUE(dev.reboot_requested) << where << ": state " << static_cast<int>(dev.state())
                                          << ", blocks fetched " << dev.agent->blocks_fetched();
        dev.deliver_budget = -1;
        dev.boot();
        dev.connect();
        EXPECT_TRUE(same_digest(dev.agent->running_digest(), p.digest)) << where;
        ++cases;
      }
    }
  }
  EXPECT_EQ(cases, 15);
}

TEST(UpdateCycle, BundleForAnotherFeatureExtractorIsRevertedBeforeItsModelRuns) {
  Fleet f;
  f.dev.connect();
  Bytes old_digest(f.dev.agent->running_digest(), f.dev.agent->running_digest() + 32);
  EXPECT_EQ(f.dev.agent->feature_extractor(), FeatureExtractorId::VibWindowV1);
  auto s = agenttest::spec(2, 2);
  s.feature_extractor = "vib-window-v9";  // signed and valid, but this firmware has no such extractor
  Published p = f.broker.publish_bundle(f.dev.make_bundle(s), f.dev.crypto);
  f.broker.publish_desired("dev-0001", 1, p);
  f.dev.disconnect();
  f.dev.connect();
  ASSERT_TRUE(f.dev.reboot_requested);
  const int calls = f.dev.inference.calls;
  f.dev.boot();  // trial boot: the health check fails at once
  EXPECT_EQ(f.dev.inference.calls, calls);
  EXPECT_EQ(f.dev.agent->feature_extractor(), FeatureExtractorId::Unknown);
  EXPECT_EQ(f.dev.state(), AgentState::Rebooting);
  EXPECT_EQ(f.dev.agent->last_reason(), Reason::HealthFeatureExtractor);
  f.dev.boot();
  EXPECT_TRUE(same_digest(f.dev.agent->running_digest(), old_digest.data()));
  EXPECT_EQ(f.dev.agent->feature_extractor(), FeatureExtractorId::VibWindowV1);
  f.dev.connect();
  auto reverted = f.broker.reports_with(Reason::HealthFeatureExtractor);
  ASSERT_FALSE(reverted.empty());
  EXPECT_EQ(reverted.back().to_state, static_cast<uint8_t>(AgentState::Idle));
}
