// The agent's update cycle on the Cortex-M4, end to end over its real event API: a device provisioned
// with one valid bundle receives a desired state for valid-device-scoped.tfb from a heap-free in-memory
// broker (retained desired, meta and blocks, delivered on SUBSCRIBE as Mosquitto does), downloads the
// components that changed, copies the others, stages a trial, reboots, runs the golden vectors through
// the Inference port and confirms; with a model that disagrees with the vectors the trial is reverted.
//
// The test's model reproduces tests/vectors' health vectors (input i*192 bytes of value i -> output
// {i, 255 - i, 0, 1}): out = {in[0], 255 - in[0], 0, 1}.
#include <cstring>
#include <initializer_list>
#include <new>

#include "device_fixture.h"
#include "semihost.h"
#include "tinytest.h"
#include "tinyfleet/agent.h"
#include "vectors_data.h"

using namespace tinyfleet;
using namespace tftest;

namespace {

constexpr Layout kLayout = {4096, 2, 8, 0xFF};
const char kDevice[] = "dev-0001";

struct TestPower final : Power {
  uint8_t pct = 80;
  uint32_t reboots = 0;
  uint8_t battery_pct() override { return pct; }
  void request_reboot() override { ++reboots; }
};

struct TestClock final : Clock {
  uint64_t now_s = 1790000000;  // tests/vectors' verifier clock
  uint32_t ms = 0;
  uint64_t unix_seconds() override { return now_s; }
  uint32_t monotonic_ms() override { return ms; }
};

struct VectorModel final : Inference {
  bool disagree = false;
  uint32_t calls = 0;
  Status run(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_len, InferenceResult& r) override {
    ++calls;
    if (in_len == 0 || out_len != 4) return Status::InvalidArgument;
    out[0] = in[0];
    out[1] = static_cast<uint8_t>(255 - in[0]);
    out[2] = 0;
    out[3] = static_cast<uint8_t>(disagree ? 2 : 1);
    r.latency_us = 1000;
    r.arena_high_water = 16000;
    return Status::Ok;
  }
};

// --- a broker with retained messages, built on the fly from the bundle bytes (no heap) ------------------
struct Broker {
  const Image* bundle = nullptr;
  uint8_t digest[32] = {};
  uint32_t desired_seq = 0;
  char subs[48][kMaxTopicLen] = {};
  size_t sub_count = 0;
  char inbox[64][kMaxTopicLen] = {};
  size_t in_head = 0, in_tail = 0;
  uint32_t block_messages = 0, reports = 0;
  uint8_t msg[kBlockHeaderLen + kBlockSize];

  void subscribe(const char* t) {
    for (size_t i = 0; i < sub_count; ++i)
      if (std::strcmp(subs[i], t) == 0) return;
    if (sub_count < 48) std::strcpy(subs[sub_count++], t);
    size_t n = 0;
    if (retained(t, n) != nullptr && in_tail - in_head < 64) std::strcpy(inbox[in_tail++ % 64], t);
  }
  void unsubscribe(const char* t) {
    for (size_t i = 0; i < sub_count; ++i)
      if (std::strcmp(subs[i], t) == 0) std::strcpy(subs[i], subs[--sub_count]);
  }
  bool subscribed(const char* t) const {
    for (size_t i = 0; i < sub_count; ++i)
      if (std::strcmp(subs[i], t) == 0) return true;
    return false;
  }
  void reset_session() { sub_count = in_head = in_tail = 0; }

  // The retained message of a topic, or nullptr.
  const uint8_t* retained(const char* topic, size_t& len) {
    if (bundle == nullptr || desired_seq == 0) return nullptr;
    char t[kMaxTopicLen];
    device_topic(t, kDevice, DeviceTopic::Desired);
    if (std::strcmp(t, topic) == 0) {
      DesiredState d;
      d.desired_seq = desired_seq;
      std::memcpy(d.digest, digest, 32);
      d.total_len = bundle->info.header.total_len;
      encode_desired(d, msg);
      len = kDesiredLen;
      return msg;
    }
    meta_topic(t, digest);
    if (std::strcmp(t, topic) == 0) {
      len = bundle->info.header.payload_offset;
      return bundle->bytes;
    }
    const ParsedTopic p = parse_topic(topic, std::strlen(topic), kDevice);
    if (p.kind != TopicKind::Block) return nullptr;
    for (uint8_t c = 0; c < bundle->info.component_count; ++c) {
      const ComponentEntry& e = bundle->info.components[c];
      if (std::memcmp(e.sha256, p.digest, 32) != 0 || p.index >= block_count(e.length)) continue;
      const uint32_t n = block_data_len(e.length, p.index);
      len = encode_block(p.index, e.length, bundle->bytes + e.offset + p.index * kBlockSize, n, msg, sizeof msg);
      return msg;
    }
    return nullptr;
  }
};

// The shell: performs the agent's actions against the broker while the event runs, acknowledges reports and
// runs health checks after it.
struct Device final : ActionSink {
  ram::RamFlash* flash = nullptr;
  TestPower power;
  TestClock clock;
  VectorModel model;
  TrustedKey key;
  AgentConfig cfg;
  Agent* agent = nullptr;
  Broker broker;
  bool connected = false;
  bool reboot = false;
  bool health_due = false;
  uint32_t acks[16];
  size_t ack_count = 0;
  void perform(const Action& a) override;
};

alignas(Agent) uint8_t g_agent_storage[sizeof(Agent)];
Device g_dev;

void Device::perform(const Action& a) {
  if (!flash->powered()) return;  // the event goes on after a power cut, but a dead device sends nothing
  char topic[kMaxTopicLen];
  const size_t tl = agent->topic(a, topic);
  switch (a.type) {
    case ActionType::Subscribe:
      if (connected) broker.subscribe(topic);
      break;
    case ActionType::Unsubscribe: broker.unsubscribe(topic); break;
    case ActionType::Publish: {
      if (connected && tl > 6 && std::strcmp(topic + tl - 6, "/state") == 0) {
        StateReport r;
        if (decode_report(a.payload, a.len, r) == Status::Ok) ++broker.reports;
        TT_EXPECT(ack_count < sizeof acks / sizeof acks[0]);
        if (ack_count < sizeof acks / sizeof acks[0]) acks[ack_count++] = a.token;
      }
      break;
    }
    case ActionType::RunHealthCheck: health_due = true; break;
    case ActionType::Reboot: reboot = true; break;
  }
}

// Deliver queued messages and run due health checks until nothing is left or a reboot is requested.
void pump(Device& d) {
  for (int guard = 0; guard < 4000; ++guard) {
    if (!d.flash->powered()) return;  // the power was cut during the last event: the device is dead
    if (d.ack_count > 0) {  // PUBACKs, in order, even before a reboot
      const uint32_t token = d.acks[0];
      std::memmove(d.acks, d.acks + 1, (--d.ack_count) * sizeof d.acks[0]);
      d.agent->on_publish_acked(token);
      continue;
    }
    if (d.reboot) return;
    if (d.health_due) {
      d.health_due = false;
      d.agent->run_health_check();
      continue;
    }
    Broker& b = d.broker;
    if (!d.connected || b.in_head == b.in_tail) return;
    char topic[kMaxTopicLen];
    std::strcpy(topic, b.inbox[b.in_head++ % 64]);
    if (!b.subscribed(topic)) continue;
    size_t len = 0;
    const uint8_t* payload = b.retained(topic, len);
    if (payload == nullptr) continue;
    if (parse_topic(topic, std::strlen(topic), kDevice).kind == TopicKind::Block) ++b.block_messages;
    d.agent->on_message(topic, std::strlen(topic), payload, len);
  }
}

// A (re)boot: boot selection, then a fresh agent (RAM state is gone, flash persists), connected.
// `image_exact`: the selected bank holds exactly valid-esp32s3.tfb or exactly the new bundle (checked before
// the agent runs: a cut armed for later may strike during the agent's start).
bool boot(Device& d, BootDecision& decision, bool* image_exact = nullptr) {
  static BootSelector* selector = nullptr;
  alignas(BootSelector) static uint8_t storage[sizeof(BootSelector)];
  selector = new (storage) BootSelector(*d.flash, crypto(), 3);
  Status s = selector->select(decision);
  while (s == Status::PowerLost) {  // a cut during boot selection: power on and boot again
    d.flash->power_on();
    s = selector->select(decision);
  }
  if (!TT_EXPECT_STATUS(s, Status::Ok)) return false;
  if (image_exact != nullptr) {
    *image_exact = bank_holds(*d.flash, decision.bank, other_image()) != bank_holds(*d.flash, decision.bank, new_image());
  }
  if (d.agent != nullptr) d.agent->~Agent();
  d.connected = false;
  d.agent = new (g_agent_storage) Agent(d.cfg, AgentPorts{*d.flash, crypto(), d.power, d.clock, d.model, d});
  d.reboot = d.health_due = false;
  d.ack_count = 0;
  d.broker.reset_session();
  d.agent->on_boot(decision);
  if (!d.flash->powered()) return true;
  pump(d);
  d.connected = true;
  d.agent->on_connection_up();
  pump(d);
  return true;
}

bool setup(Device& d, const Image& provisioned) {
  d.flash = &fresh_flash(kLayout);
  d.agent = nullptr;
  d.power = TestPower{};
  d.model = VectorModel{};
  d.broker = Broker{};
  d.connected = false;
  d.key.der = tfvec::kKeys[0].der;  // key A: signs every valid vector
  d.key.der_len = tfvec::kKeys[0].der_len;
  compute_key_id(crypto(), d.key);
  d.cfg.device_id = kDevice;
  d.cfg.hardware_class = "stm32l4";
  d.cfg.keys = &d.key;
  d.cfg.key_count = 1;
  static BootSelector* selector = nullptr;
  alignas(BootSelector) static uint8_t storage[sizeof(BootSelector)];
  selector = new (storage) BootSelector(*d.flash, crypto(), 3);
  return TT_EXPECT_STATUS(write_image(*d.flash, crypto(), 0, provisioned, 4096, nullptr, nullptr), Status::Ok) &&
         TT_EXPECT_STATUS(selector->provision(0, provisioned.desc), Status::Ok);
}

// The server publishes desired state for the new bundle (retained), delivered at once if subscribed.
void publish_desired(Device& d) {
  d.broker.bundle = &new_image();
  sha256(crypto(), new_image().bytes, new_image().info.header.payload_offset, d.broker.digest);
  d.broker.desired_seq = 1;
  char desired[kMaxTopicLen];
  device_topic(desired, kDevice, DeviceTopic::Desired);
  if (d.broker.subscribed(desired) && d.broker.in_tail - d.broker.in_head < 64)
    std::strcpy(d.broker.inbox[d.broker.in_tail++ % 64], desired);
  pump(d);
}

// Provision valid-esp32s3.tfb's image (firmware and model differ from the new bundle's, the other three
// components are the same), boot, offer the new bundle; returns with the trial image booted (its health
// check run).
bool update_to_trial(Device& d, BootDecision& decision) {
  if (!setup(d, other_image()) || !boot(d, decision)) return false;
  TT_EXPECT(d.agent->state() == AgentState::Idle);
  publish_desired(d);
  if (!TT_EXPECT(d.reboot) || !TT_EXPECT(d.agent->state() == AgentState::Rebooting)) return false;
  // Firmware (3000 B) and model (1500 B) are downloaded, one block each; the other three are copied.
  TT_EXPECT_EQ(d.broker.block_messages, 2);
  TT_EXPECT(d.broker.reports >= 3);
  if (!boot(d, decision)) return false;
  TT_EXPECT(decision.trial);
  TT_EXPECT_EQ(decision.bank, 1);
  TT_EXPECT(bank_holds(*d.flash, 1, new_image()));
  TT_EXPECT(d.model.calls >= 1);  // golden vectors replayed on the trial boot
  return true;
}

}  // namespace

TT_TEST(Agent, UpdateConfirmedAfterHealthyTrial) {
  Device& d = g_dev;
  BootDecision decision;
  TT_ASSERT(update_to_trial(d, decision));
  TT_EXPECT(d.agent->state() == AgentState::Idle);  // vectors passed and the broker is reached: confirmed
  TT_EXPECT(!d.reboot);
  TT_ASSERT(boot(d, decision));  // the next boot runs the new image, confirmed
  TT_EXPECT(!decision.trial);
  TT_EXPECT_EQ(decision.bank, 1);
  TT_EXPECT(decision.record.state == BootState::Confirmed);
  uint8_t want[32];
  sha256(crypto(), new_image().bytes, new_image().info.header.payload_offset, want);
  TT_EXPECT(std::memcmp(d.agent->running_digest(), want, 32) == 0);
}

TT_TEST(Agent, FailedHealthCheckReverts) {
  Device& d = g_dev;
  BootDecision decision;
  // The provisioned image has the same components as the new one: all five are copied, none downloaded.
  TT_ASSERT(setup(d, old_image()) && boot(d, decision));
  d.model.disagree = true;
  d.broker.bundle = &new_image();
  sha256(crypto(), new_image().bytes, new_image().info.header.payload_offset, d.broker.digest);
  d.broker.desired_seq = 1;
  char desired[kMaxTopicLen];
  device_topic(desired, kDevice, DeviceTopic::Desired);
  std::strcpy(d.broker.inbox[d.broker.in_tail++ % 64], desired);
  pump(d);
  TT_ASSERT(d.reboot);
  TT_EXPECT_EQ(d.broker.block_messages, 0);
  TT_ASSERT(boot(d, decision));
  TT_EXPECT(decision.trial);
  TT_EXPECT(d.reboot);  // the vectors disagree: revert and reboot
  TT_EXPECT(d.agent->last_reason() == Reason::HealthOutputMismatch);
  TT_ASSERT(boot(d, decision));
  TT_EXPECT(!decision.trial);
  TT_EXPECT_EQ(decision.bank, 0);
  TT_EXPECT(decision.record.state == BootState::Reverted);
  TT_EXPECT(bank_holds(*d.flash, 0, old_image()));
  // The broker still holds the same desired state: the agent refuses the bundle that failed its trial.
  TT_EXPECT(d.agent->state() == AgentState::Failed);
  TT_EXPECT(d.agent->last_reason() == Reason::PreviouslyFailed);
}

namespace {

// One device life with an optional power cut at flash operation `cut_at` (counted from the moment the
// desired state is published): update to the new bundle and settle. Every boot must run exactly the old
// or exactly the new image; the device must end on the new image, confirmed. `ops`: operations of an
// uncut run.
bool update_with_cut(Device& d, bool cut, uint32_t cut_at, ram::CutMode mode, uint32_t* ops, const char*& why) {
  BootDecision decision;
  if (!setup(d, other_image()) || !boot(d, decision)) return why = "setup", false;
  const uint32_t base = d.flash->op_count();
  if (cut) d.flash->cut_power_at(cut_at, mode);
  publish_desired(d);
  for (int step = 0; step < 24; ++step) {
    if (!d.flash->powered() || d.reboot) {
      d.flash->power_on();
      bool image_exact = false;
      if (!boot(d, decision, &image_exact)) return why = "boot selection failed", false;
      if (!image_exact) return why = "booted bank holds neither bundle exactly", false;
      continue;
    }
    MetadataRecord rec;
    if (MetadataStore(*d.flash).load(rec) == Status::Ok && rec.state == BootState::Confirmed &&
        rec.confirmed_bank == 1 && d.agent->state() == AgentState::Idle && bank_holds(*d.flash, 1, new_image())) {
      if (ops != nullptr) *ops = d.flash->op_count() - base;
      return true;
    }
    d.clock.ms += 31000;  // quiet but not done: time passes (retries, broker timeouts)
    d.agent->on_tick();
    pump(d);
  }
  return why = "did not settle on the new image", false;
}

}  // namespace

TT_TEST(Agent, PowerCutAtEveryFlashOperation) {
  Device& d = g_dev;
  uint32_t n = 0;
  const char* why = nullptr;
  TT_ASSERT(update_with_cut(d, false, 0, ram::CutMode::Before, &n, why));
  TT_ASSERT(n > 5);
  uint32_t cuts = 0;
  for (uint32_t i = 0; i < n; ++i) {
    for (ram::CutMode mode : {ram::CutMode::Before, ram::CutMode::Torn, ram::CutMode::After}) {
      if (!TT_EXPECT(update_with_cut(d, true, i, mode, nullptr, why))) {
        tinyfleet::semihost::write("    ");
        tinyfleet::semihost::write(why);
        tinyfleet::semihost::write(" after a cut at operation ");
        tinyfleet::semihost::write_u32(i);
        tinyfleet::semihost::write(", mode ");
        tinyfleet::semihost::write_u32(static_cast<uint32_t>(mode));
        tinyfleet::semihost::write("\n");
        return;
      }
      ++cuts;
    }
  }
  tinyfleet::semihost::write("  [agent powercut] ");
  tinyfleet::semihost::write_u32(cuts);
  tinyfleet::semihost::write(" cut points over the agent's whole update (");
  tinyfleet::semihost::write_u32(n);
  tinyfleet::semihost::write(" flash operations, each cut before, torn and after)\n");
}
