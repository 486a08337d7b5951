// The rejection matrix: every way a bundle is refused, through the whole agent, and for each one the check
// that the refusal changed nothing that decides what boots (refusal_check.h): both metadata copies and the
// stored counter byte for byte, the running bank, no bank switch across a reboot.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>

#include "agent_harness.h"
#include "refusal_check.h"
#include "support/encodings.h"

using namespace tinyfleet;
using agenttest::Broker;
using agenttest::Bytes;
using agenttest::Device;
using agenttest::Published;

namespace {

constexpr uint32_t kRunningCounter = 5;

struct Case {
  const char* name;
  Reason reason;           // the refusal's reason
  AgentState final_state;  // Failed, or Idle for a bundle that is already running
  // Publishes the bundle and a desired state naming it (desired_seq 1) on the broker.
  std::function<void(Device&, Broker&, const Bytes& running)> publish;
};

Bytes bundle(Device& dev, uint32_t counter, const std::function<void(tftest::BundleSpec&)>& edit = nullptr) {
  tftest::BundleSpec s = agenttest::spec(7, counter);
  if (edit) edit(s);
  return dev.make_bundle(s);
}

void publish(Broker& broker, Device& dev, const Bytes& b) {
  broker.publish_desired("dev-0001", 1, broker.publish_bundle(b, dev.crypto));
}

// The offset in `b` of the first occurrence of `needle` (the test fails if there is none).
size_t find(const Bytes& b, const uint8_t* needle, size_t len) {
  auto it = std::search(b.begin(), b.end(), needle, needle + len);
  EXPECT_NE(it, b.end());
  return static_cast<size_t>(it - b.begin());
}

const Case kCases[] = {
    {"lower counter", reason_from_status(Status::CounterTooLow), AgentState::Failed,
     [](Device& d, Broker& br, const Bytes&) { publish(br, d, bundle(d, kRunningCounter - 1)); }},
    {"expired", reason_from_status(Status::Expired), AgentState::Failed,
     [](Device& d, Broker& br, const Bytes&) {
       publish(br, d, bundle(d, kRunningCounter, [&d](tftest::BundleSpec& s) { s.expires = d.clock.unix; }));
     }},
    {"wrong hardware class", reason_from_status(Status::WrongHardwareClass), AgentState::Failed,
     [](Device& d, Broker& br, const Bytes&) {
       publish(br, d, bundle(d, kRunningCounter, [](tftest::BundleSpec& s) { s.hardware_class = "esp32s3"; }));
     }},
    {"unknown key", reason_from_status(Status::UnknownKeyId), AgentState::Failed,
     [](Device& d, Broker& br, const Bytes&) {
       tftest::TestSigner other("not-trusted");
       publish(br, d, tftest::build_bundle(agenttest::spec(7, kRunningCounter), &other));
     }},
    {"bad signature", reason_from_status(Status::BadSignature), AgentState::Failed,
     [](Device& d, Broker& br, const Bytes&) {
       Bytes b = bundle(d, kRunningCounter);
       BundleInfo info;
       ASSERT_EQ(parse_prefix(b.data(), b.size(), info), Status::Ok);
       // The last byte of the DER signature (inside its s value): still well-formed, no longer valid.
       const size_t at = find(b, info.signature.signature, info.signature.signature_len);
       b[at + info.signature.signature_len - 1] ^= 0x01;
       publish(br, d, b);
     }},
    {"edited signed region", reason_from_status(Status::BadSignature), AgentState::Failed,
     [](Device& d, Broker& br, const Bytes&) {
       Bytes b = bundle(d, kRunningCounter);
       const std::string id = "agent-test-7";
       b[find(b, reinterpret_cast<const uint8_t*>(id.data()), id.size()) + id.size() - 1] = '8';  // the bundle id
       publish(br, d, b);
     }},
    {"payload corrupted after signing", Reason::HashMismatch, AgentState::Failed,
     [](Device& d, Broker& br, const Bytes&) {
       Bytes b = bundle(d, kRunningCounter);
       BundleInfo info;
       ASSERT_EQ(parse_prefix(b.data(), b.size(), info), Status::Ok);
       b[info.components[0].offset + 100] ^= 0x40;  // the firmware, after the signature was made
       publish(br, d, b);
     }},
    {"1-byte bundle", Reason::MetaMismatch, AgentState::Failed,
     [](Device& d, Broker& br, const Bytes&) {
       const Bytes one = {0x54};
       DesiredState desired;
       desired.desired_seq = 1;
       sha256(d.crypto, one.data(), one.size(), desired.digest);
       desired.total_len = 1;
       char topic[kMaxTopicLen];
       meta_topic(topic, desired.digest);
       br.retained[topic] = one;
       Bytes msg(kDesiredLen);
       encode_desired(desired, msg.data());
       device_topic(topic, "dev-0001", DeviceTopic::Desired);
       br.retained[topic] = msg;
     }},
    {"same bundle as running", Reason::UpToDate, AgentState::Idle,
     [](Device& d, Broker& br, const Bytes& running) { publish(br, d, running); }},
    // The encodings that once gave the same content a second digest (docs/bundle-format.md).
    {"non-zero prefix padding", reason_from_status(Status::BadSignature), AgentState::Failed,
     [](Device& d, Broker& br, const Bytes&) {
       const Bytes b = bundle(d, kRunningCounter);
       Published p = br.publish_bundle(b, d.crypto);
       Bytes meta(b.begin(), b.begin() + p.info.header.payload_offset);
       const uint32_t pad = agenttest::signed_len_of(b) + 96;  // past the signature block
       ASSERT_LT(pad, meta.size()) << "the spec leaves no padding";
       meta[pad] = 0x01;
       sha256(d.crypto, meta.data(), meta.size(), p.digest);
       char topic[kMaxTopicLen];
       meta_topic(topic, p.digest);
       br.retained[topic] = meta;
       br.publish_desired("dev-0001", 1, p);
     }},
    {"high-s signature", reason_from_status(Status::BadSignature), AgentState::Failed,
     [](Device& d, Broker& br, const Bytes&) { publish(br, d, agenttest::with_high_s(bundle(d, kRunningCounter))); }},
    {"running content re-signed", Reason::UpToDate, AgentState::Idle,
     [](Device& d, Broker& br, const Bytes& running) { publish(br, d, agenttest::resigned(running, d.signer)); }},
};

}  // namespace

TEST(UpdateRejection, EveryRefusalLeavesMetadataCounterAndBootedBankUnchanged) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    Broker broker;
    Device dev;
    dev.broker = &broker;
    const Bytes running = dev.make_bundle(agenttest::spec(1, kRunningCounter));
    dev.provision(running);
    dev.boot();
    const agenttest::TrustedState before = agenttest::capture(dev);
    ASSERT_EQ(before.counter, kRunningCounter);
    c.publish(dev, broker, running);
    if (::testing::Test::HasFatalFailure()) return;
    dev.connect();
    EXPECT_EQ(dev.state(), c.final_state);
    EXPECT_EQ(dev.agent->last_reason(), c.reason) << "got " << static_cast<int>(dev.agent->last_reason());
    EXPECT_FALSE(broker.reports_with(c.reason).empty());
    EXPECT_TRUE(agenttest::unchanged_after_refusal(dev, before));
  }
}

TEST(UpdateRejection, TheUnchangedCheckSeesAnInstallAndAnyMetadataByte) {
  Broker broker;
  Device dev;
  dev.broker = &broker;
  dev.provision(dev.make_bundle(agenttest::spec(1, kRunningCounter)));
  dev.boot();
  agenttest::TrustedState before = agenttest::capture(dev);
  dev.flash.flip_bit(FlashArea::Meta1, 200, 3);  // a byte past the record, in the copy not in use
  const ::testing::AssertionResult byte = agenttest::unchanged_after_refusal(dev, before);
  EXPECT_FALSE(byte);
  EXPECT_NE(std::string(byte.message()).find("Meta1 changed"), std::string::npos) << byte.message();
  dev.flash.flip_bit(FlashArea::Meta1, 200, 3);
  before = agenttest::capture(dev);
  publish(broker, dev, bundle(dev, kRunningCounter + 1));  // a bundle the device accepts
  dev.connect();
  ASSERT_TRUE(dev.reboot_requested);
  EXPECT_FALSE(agenttest::unchanged_after_refusal(dev, before));
  dev.reboot_requested = false;  // even unasked, the trial install is seen in the metadata
  const ::testing::AssertionResult installed = agenttest::unchanged_after_refusal(dev, before);
  EXPECT_FALSE(installed);
  EXPECT_NE(std::string(installed.message()).find("changed"), std::string::npos) << installed.message();
}
