// A broker session that outlives a connection (docs/device-protocol.md, "Connection"): Clean Start only on a
// boot's first connect; with Session Present the device re-subscribes with Retain Handling 1 and takes what
// its session queued while it was away, each message once; without it everything starts afresh.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "agent_harness.h"

using namespace tinyfleet;
using agenttest::Broker;
using agenttest::Bytes;
using agenttest::Device;
using agenttest::Published;

namespace {

using Fleet = agenttest::BootedDevice;

std::string desired_topic() {
  char t[kMaxTopicLen];
  device_topic(t, "dev-0001", DeviceTopic::Desired);
  return t;
}

Bytes desired_msg(uint32_t seq, const Published& p) {
  DesiredState d;
  d.desired_seq = seq;
  std::memcpy(d.digest, p.digest, 32);
  d.total_len = p.info.header.total_len;
  Bytes msg(kDesiredLen);
  encode_desired(d, msg.data());
  return msg;
}

size_t count(const std::vector<std::string>& log, const std::string& t) {
  return static_cast<size_t>(std::count(log.begin(), log.end(), t));
}

bool is_block(const std::string& t) { return t.rfind("fleet/blobs/", 0) == 0; }

}  // namespace

TEST(SessionResume, CleanStartOnlyUntilTheFirstConnectionOfABoot) {
  Fleet f;
  f.dev.cfg.session_expiry_s = 3600;
  f.dev.boot();
  EXPECT_TRUE(f.dev.agent->connect_options().clean_start);  // a fresh boot holds no session state
  EXPECT_EQ(f.dev.agent->connect_options().session_expiry_s, 3600u);
  f.dev.disconnect();  // a connect that never got its CONNACK: still a clean start
  EXPECT_TRUE(f.dev.agent->connect_options().clean_start);
  f.dev.connect();
  f.dev.disconnect(true);
  EXPECT_FALSE(f.dev.agent->connect_options().clean_start);
  f.dev.connect(true);
  EXPECT_FALSE(f.dev.agent->connect_options().clean_start);
  f.dev.boot();
  EXPECT_TRUE(f.dev.agent->connect_options().clean_start);
}

TEST(SessionResume, ADesiredStatePublishedWhileAwayArrivesOnceFromTheSession) {
  Fleet f;
  f.dev.connect();
  ASSERT_EQ(count(f.broker.subscribe_log, desired_topic()), 1u);
  EXPECT_TRUE(f.broker.resubscribe_log.empty());  // the boot's first session: Retain Handling 0
  f.dev.disconnect(true);

  Published p = f.broker.publish_bundle(f.dev.make_bundle(agenttest::spec(2, 2)), f.dev.crypto);
  f.dev.publish_live(desired_topic(), desired_msg(1, p));  // queued in the session
  EXPECT_TRUE(f.broker.delivery_log.empty());

  f.dev.connect(true);
  // The device re-subscribed with Retain Handling 1: no retained copy, only the queued message.
  EXPECT_EQ(count(f.broker.resubscribe_log, desired_topic()), 1u);
  EXPECT_EQ(count(f.broker.delivery_log, desired_topic()), 1u);
  ASSERT_TRUE(f.dev.reboot_requested) << static_cast<int>(f.dev.state());
  EXPECT_EQ(f.broker.reports_with(Reason::Staged).size(), 1u);
  for (const std::string& t : f.broker.delivery_log) {
    EXPECT_LE(count(f.broker.delivery_log, t), 1u) << t;  // every message once
  }
}

TEST(SessionResume, AResumedDownloadTakesTheBlocksInFlightOnceAndFinishes) {
  Fleet f;
  f.dev.connect();
  Published p = f.broker.publish_bundle(f.dev.make_bundle(agenttest::spec(2, 2)), f.dev.crypto);
  f.dev.keep_session_on_drop = true;
  f.dev.deliver_budget = 3;  // desired, meta, one block: then the connection drops with the window in flight
  f.dev.publish_live(desired_topic(), desired_msg(1, p));
  ASSERT_FALSE(f.dev.connected);
  ASSERT_EQ(f.dev.state(), AgentState::Downloading);
  const std::vector<std::string> before = f.broker.subscribe_log;

  f.dev.deliver_budget = -1;
  f.dev.connect(true);
  ASSERT_TRUE(f.dev.reboot_requested) << static_cast<int>(f.dev.state());
  EXPECT_EQ(f.broker.reports_with(Reason::Staged).size(), 1u);
  // The window the broker still held was re-subscribed with Retain Handling 1, each block delivered once.
  size_t resubscribed_blocks = 0;
  for (const std::string& t : f.broker.resubscribe_log) resubscribed_blocks += is_block(t) ? 1 : 0;
  EXPECT_EQ(resubscribed_blocks, static_cast<size_t>(TINYFLEET_BLOCK_WINDOW));
  for (const std::string& t : f.broker.delivery_log) EXPECT_EQ(count(f.broker.delivery_log, t), 1u) << t;
  size_t delivered_blocks = 0;
  for (const std::string& t : f.broker.delivery_log) delivered_blocks += is_block(t) ? 1 : 0;
  EXPECT_EQ(f.dev.agent->blocks_fetched(), delivered_blocks);  // every block delivered was one the agent wanted
  for (const std::string& t : before) {
    if (is_block(t)) {
      EXPECT_EQ(count(f.broker.subscribe_log, t), 1u + count(f.broker.resubscribe_log, t)) << t;
    }
  }
}

TEST(SessionResume, WithoutASessionTheWindowIsSubscribedAfresh) {
  Fleet f;
  f.dev.connect();
  Published p = f.broker.publish_bundle(f.dev.make_bundle(agenttest::spec(2, 2)), f.dev.crypto);
  f.dev.deliver_budget = 3;
  f.dev.publish_live(desired_topic(), desired_msg(1, p));  // the drop: the broker forgets the session
  ASSERT_EQ(f.dev.state(), AgentState::Downloading);

  f.dev.deliver_budget = -1;
  f.dev.connect(false);
  ASSERT_TRUE(f.dev.reboot_requested) << static_cast<int>(f.dev.state());
  EXPECT_TRUE(f.broker.resubscribe_log.empty());  // Retain Handling 0 throughout: retained copies come again
  EXPECT_EQ(count(f.broker.delivery_log, desired_topic()), 2u);  // the live one, then the retained one
}
