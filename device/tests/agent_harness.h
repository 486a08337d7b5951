// Test harness for the agent: one emulated device (host NOR flash, mbedTLS, battery, clock and a
// deterministic model) and an in-memory broker that keeps retained messages, delivers them on SUBSCRIBE
// and records every subscription and publish, so tests assert exactly which blocks were fetched.
// The model: output[j] = sum(input) * (j + 1) + j (mod 256); health vectors are built from it.
#pragma once

#include <algorithm>
#include <deque>
#include <stdexcept>
#include <functional>
#include <map>
#include <array>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "flash_emulator.h"
#include "mbedtls_crypto.h"
#include "support/bundle_builder.h"
#include "update_driver.h"
#include "tinyfleet/agent.h"
#include "tinyfleet/protocol.h"

namespace agenttest {

using Bytes = std::vector<uint8_t>;

struct FakePower final : tinyfleet::Power {
  uint8_t pct = 80;
  int reboots = 0;
  uint8_t battery_pct() override { return pct; }
  void request_reboot() override { ++reboots; }
};

struct FakeClock final : tinyfleet::Clock {
  uint64_t unix = 1790000000;
  uint32_t ms = 0;
  uint64_t unix_seconds() override { return unix; }
  uint32_t monotonic_ms() override { return ms; }
  void advance_ms(uint32_t d) {
    ms += d;
    unix += d / 1000;
  }
};

inline Bytes model_output(const uint8_t* in, size_t n, size_t out_len) {
  uint32_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += in[i];
  Bytes out(out_len);
  for (size_t j = 0; j < out_len; ++j) out[j] = static_cast<uint8_t>(sum * (j + 1) + j);
  return out;
}

struct FakeInference final : tinyfleet::Inference {
  uint32_t latency_us = 1200;
  uint32_t arena = 12000;
  int flip_output_at = -1;  // corrupt the output of this call (a model that disagrees with the vectors)
  bool always_wrong = false;  // corrupt every output
  int calls = 0;
  tinyfleet::Status run(const uint8_t* input, size_t input_len, uint8_t* output, size_t output_len,
                        tinyfleet::InferenceResult& r) override {
    Bytes o = model_output(input, input_len, output_len);
    if (calls++ == flip_output_at || always_wrong) o[0] ^= 1;
    std::copy(o.begin(), o.end(), output);
    r.latency_us = latency_us;
    r.arena_high_water = arena;
    return tinyfleet::Status::Ok;
  }
};

// Health vectors (8-byte int8 input, 4-byte output, as bundle_builder's manifest says) from the model.
inline Bytes health_vectors(uint32_t seed, int count = 4) {
  Bytes v = {'T', 'F', 'H', 'V', 1, 0, static_cast<uint8_t>(count), 0, 8, 0, 0, 0, 4, 0, 0, 0};
  for (int k = 0; k < count; ++k) {
    Bytes in = tftest::pattern(8, seed * 100 + static_cast<uint32_t>(k));
    Bytes out = model_output(in.data(), in.size(), 4);
    v.insert(v.end(), in.begin(), in.end());
    v.insert(v.end(), out.begin(), out.end());
  }
  return v;
}

// A bundle spec whose components span several 4096-byte blocks.
inline tftest::BundleSpec spec(uint32_t seed, uint32_t counter = 1) {
  tftest::BundleSpec s = tftest::small_spec(seed);
  s.bundle_id = "agent-test-" + std::to_string(seed);
  s.security_counter = counter;
  s.payloads[0] = tftest::pattern(9000 + seed % 5, seed * 7 + 1);  // firmware: 3 blocks
  s.payloads[1] = tftest::pattern(5000, seed * 7 + 2);             // model: 2 blocks
  s.payloads[4] = health_vectors(seed);
  return s;
}

struct Published {
  Bytes bundle;
  tinyfleet::BundleInfo info;
  uint8_t digest[32];
};

class Broker {
 public:
  std::map<std::string, Bytes> retained;
  std::set<std::string> subscriptions;
  std::vector<std::string> subscribe_log;  // every SUBSCRIBE, in order
  std::vector<std::string> resubscribe_log;  // the SUBSCRIBEs with Retain Handling 1, in order
  std::vector<std::string> delivery_log;     // every message handed to the agent, in order
  std::vector<tinyfleet::StateReport> reports;
  std::vector<tinyfleet::Presence> presence;
  std::vector<Bytes> telemetry;  // raw TFTM records
  bool auto_ack = true;

  // Server side: publish a bundle's blocks and meta (retained), returns its digest.
  Published publish_bundle(const Bytes& bundle, tinyfleet::Crypto& crypto);
  void publish_desired(const std::string& device, uint32_t seq, const Published& p, uint8_t flags = 0);
  size_t block_subscriptions(const uint8_t sha[32]) const;
  size_t all_block_subscriptions() const;
  std::vector<tinyfleet::StateReport> reports_with(tinyfleet::Reason r) const;
};

// The signing key of every Device's bundles (deterministic from its seed): generated once per process.
inline const tftest::TestSigner& shared_signer() {
  static const tftest::TestSigner signer{"agent-tests"};
  return signer;
}

class Device final : public tinyfleet::ActionSink {
 public:
  explicit Device(const tinyfleet::host::FlashLayout& layout, uint32_t max_trial_boots = 3);
  Device();

  tinyfleet::host::MbedtlsCrypto crypto;
  tinyfleet::host::FlashEmulator flash;
  FakePower power;
  FakeClock clock;
  FakeInference inference;
  const tftest::TestSigner& signer = shared_signer();
  tinyfleet::TrustedKey key;
  tinyfleet::AgentConfig cfg;
  std::unique_ptr<tinyfleet::Agent> agent;
  std::array<int16_t, 2048> samples{};  // the application's calibrated-sample ring
  Broker* broker = nullptr;
  bool connected = false;
  bool reboot_requested = false;
  bool run_health = true;  // perform RunHealthCheck actions
  uint32_t max_trial_boots;
  // Deliver at most this many more messages, then drop the connection (-1 = unlimited).
  long deliver_budget = -1;
  std::function<void(const std::string&, Bytes&)> tamper;  // edit a message before delivery
  // Chaos: how many times to deliver the next message (0 = drop it, 2 = duplicate it, -1 = delay it).
  std::function<int(const std::string&)> fate;

  Bytes make_bundle(const tftest::BundleSpec& s) { return tftest::build_bundle(s, &signer); }
  void provision(const Bytes& bundle);
  // Boot selection + a fresh agent (a reboot: RAM state is gone, flash persists).
  void boot();
  // session_present: the broker kept the session of the last connection (subscriptions, queued messages).
  void connect(bool session_present = false);
  // keep_session: the broker keeps the session (Session Expiry > 0): its subscriptions stay, and so do the
  // messages queued or in flight for them; otherwise it forgets both.
  void disconnect(bool keep_session = false);
  // Server side: a retained publish that also reaches the device's session if it subscribed to `topic`
  // (delivered now if connected, else when it reconnects with its session).
  void publish_live(const std::string& topic, const Bytes& msg);
  bool keep_session_on_drop = false;  // deliver_budget's drop keeps the session
  void tick(uint32_t ms);
  void battery(uint8_t pct);
  tinyfleet::AgentState state() const { return agent->state(); }

  // What the agent does during an event: a subscription delivers retained messages to the inbox, a report is
  // acknowledged after the event (auto_ack), a reboot or health check is done by pump().
  void perform(const tinyfleet::Action& a) override;
  // After an event: acknowledge, run a requested health check, deliver queued messages until quiet.
  void pump();

 private:
  std::deque<std::pair<std::string, Bytes>> inbox_;
  std::vector<uint32_t> acks_;
  bool health_due_ = false;
};

// --- implementation (header-only: the test glob compiles only test_*.cpp) ---------------------------

inline Published Broker::publish_bundle(const Bytes& bundle, tinyfleet::Crypto& crypto) {
  using namespace tinyfleet;
  Published p;
  p.bundle = bundle;
  if (parse_prefix(bundle.data(), bundle.size(), p.info) != Status::Ok) throw std::runtime_error("bad bundle");
  const uint32_t poff = p.info.header.payload_offset;
  sha256(crypto, bundle.data(), poff, p.digest);
  char topic[kMaxTopicLen];
  for (uint8_t c = 0; c < p.info.component_count; ++c) {
    const ComponentEntry& e = p.info.components[c];
    for (uint32_t b = 0; b < block_count(e.length); ++b) {
      uint32_t n = block_data_len(e.length, b);
      Bytes msg(kBlockHeaderLen + n);
      encode_block(b, e.length, bundle.data() + e.offset + b * kBlockSize, n, msg.data(), msg.size());
      block_topic(topic, e.sha256, b);
      retained[topic] = msg;
    }
  }
  meta_topic(topic, p.digest);
  retained[topic] = Bytes(bundle.begin(), bundle.begin() + poff);
  return p;
}

inline void Broker::publish_desired(const std::string& device, uint32_t seq, const Published& p, uint8_t flags) {
  using namespace tinyfleet;
  DesiredState d;
  d.flags = flags;
  d.desired_seq = seq;
  std::copy(p.digest, p.digest + 32, d.digest);
  d.total_len = p.info.header.total_len;
  Bytes msg(kDesiredLen);
  encode_desired(d, msg.data());
  char topic[kMaxTopicLen];
  device_topic(topic, device.c_str(), DeviceTopic::Desired);
  retained[topic] = msg;
}

inline size_t Broker::block_subscriptions(const uint8_t sha[32]) const {
  char hex[65] = {};
  tinyfleet::to_hex(sha, 32, hex);
  std::string prefix = std::string("fleet/blobs/") + hex + "/b/";
  size_t n = 0;
  for (const auto& t : subscribe_log) n += t.rfind(prefix, 0) == 0 ? 1 : 0;
  return n;
}

inline size_t Broker::all_block_subscriptions() const {
  size_t n = 0;
  for (const auto& t : subscribe_log) n += t.rfind("fleet/blobs/", 0) == 0 ? 1 : 0;
  return n;
}

inline std::vector<tinyfleet::StateReport> Broker::reports_with(tinyfleet::Reason r) const {
  std::vector<tinyfleet::StateReport> out;
  for (const auto& rep : reports) {
    if (rep.reason == static_cast<uint16_t>(r)) out.push_back(rep);
  }
  return out;
}

inline Device::Device(const tinyfleet::host::FlashLayout& layout, uint32_t max_boots)
    : flash(layout), max_trial_boots(max_boots) {
  key.der = signer.public_der().data();
  key.der_len = static_cast<uint16_t>(signer.public_der().size());
  tinyfleet::compute_key_id(crypto, key);
  cfg.device_id = "dev-0001";
  cfg.hardware_class = "stm32l4";
  cfg.keys = &key;
  cfg.key_count = 1;
}

// 4 KiB sectors, 64 KiB banks, 8-byte writes, erased 0xFF, two scratch sectors for the progress record.
inline Device::Device() : Device(tinyfleet::host::FlashLayout::dual_bank(4096, 16, 8, 0xFF, 2)) {}

inline void Device::provision(const Bytes& bundle) {
  tftest::Image img;
  tinyfleet::BootSelector sel(flash, crypto, static_cast<uint8_t>(max_trial_boots));
  if (tftest::make_image(bundle.data(), static_cast<uint32_t>(bundle.size()), crypto, img) != tinyfleet::Status::Ok ||
      tftest::write_image(flash, crypto, 0, img, 4096) != tinyfleet::Status::Ok ||
      sel.provision(0, img.desc) != tinyfleet::Status::Ok) {
    throw std::runtime_error("provisioning failed");
  }
}

inline void Device::boot() {
  flash.power_on();
  connected = false;
  reboot_requested = false;
  inbox_.clear();
  acks_.clear();
  if (broker != nullptr) broker->subscriptions.clear();
  tinyfleet::BootSelector sel(flash, crypto, static_cast<uint8_t>(max_trial_boots));
  tinyfleet::BootDecision d;
  tinyfleet::Status s = sel.select(d);
  while (s != tinyfleet::Status::Ok && !flash.powered()) {  // power cut during boot selection: power on again
    flash.power_on();
    s = sel.select(d);
  }
  if (s != tinyfleet::Status::Ok) throw std::runtime_error("no bootable image");
  agent = std::make_unique<tinyfleet::Agent>(cfg, tinyfleet::AgentPorts{flash, crypto, power, clock, inference, *this});
  agent->attach_sample_ring(samples.data(), static_cast<uint32_t>(samples.size()));
  agent->on_boot(d);
  pump();
}

inline void Device::connect(bool session_present) {
  connected = true;
  agent->on_connection_up(session_present);
  pump();
}

inline void Device::disconnect(bool keep_session) {
  connected = false;
  acks_.clear();  // PUBACKs in flight die with the connection
  if (!keep_session) {
    inbox_.clear();
    if (broker != nullptr) broker->subscriptions.clear();
  }
  agent->on_connection_down();
  pump();
}

inline void Device::publish_live(const std::string& topic, const Bytes& msg) {
  broker->retained[topic] = msg;
  if (broker->subscriptions.count(topic) != 0) inbox_.emplace_back(topic, msg);
  pump();
}

inline void Device::tick(uint32_t ms) {
  clock.advance_ms(ms);
  agent->on_tick();
  pump();
}

inline void Device::battery(uint8_t pct) {
  power.pct = pct;
  agent->on_battery(pct);
  pump();
}

inline void Device::perform(const tinyfleet::Action& a) {
  using tinyfleet::ActionType;
  if (!flash.powered()) return;  // the event goes on after a power cut, but a dead device sends nothing
  char buf[tinyfleet::kMaxTopicLen];
  const std::string t(buf, agent->topic(a, buf));
  switch (a.type) {
    case ActionType::Subscribe:
      if (broker == nullptr || !connected) break;
      broker->subscribe_log.push_back(t);
      if (a.retain_handling == 1) broker->resubscribe_log.push_back(t);
      if (a.retain_handling == 1 && !broker->subscriptions.insert(t).second) break;  // held: no retained copy
      broker->subscriptions.insert(t);
      if (auto it = broker->retained.find(t); it != broker->retained.end()) {
        inbox_.emplace_back(t, it->second);
      }
      break;
    case ActionType::Unsubscribe:
      if (broker != nullptr) broker->subscriptions.erase(t);
      break;
    case ActionType::Publish: {
      if (broker == nullptr || !connected) break;
      if (t.size() > 6 && t.compare(t.size() - 6, 6, "/state") == 0) {
        tinyfleet::StateReport r;
        if (tinyfleet::decode_report(a.payload, a.len, r) == tinyfleet::Status::Ok) broker->reports.push_back(r);
        if (broker->auto_ack) acks_.push_back(a.token);
      } else if (t.size() > 9 && t.compare(t.size() - 9, 9, "/presence") == 0) {
        tinyfleet::Presence p;
        if (tinyfleet::decode_presence(a.payload, a.len, p) == tinyfleet::Status::Ok) broker->presence.push_back(p);
        broker->retained[t] = Bytes(a.payload, a.payload + a.len);
      } else if (t.size() > 10 && t.compare(t.size() - 10, 10, "/telemetry") == 0) {
        broker->telemetry.push_back(Bytes(a.payload, a.payload + a.len));
      }
      break;
    }
    case ActionType::RunHealthCheck:
      health_due_ = true;
      break;
    case ActionType::Reboot:
      reboot_requested = true;
      break;
  }
}

inline void Device::pump() {
  for (;;) {
    if (!flash.powered()) return;  // the power was cut during the last event: the device is dead until boot()
    if (!acks_.empty()) {  // PUBACKs are flushed even before a reboot
      uint32_t t = acks_.front();
      acks_.erase(acks_.begin());
      agent->on_publish_acked(t);
      continue;
    }
    if (reboot_requested) return;
    if (health_due_ && run_health) {
      health_due_ = false;
      agent->run_health_check();
      continue;
    }
    if (inbox_.empty() || !connected) return;
    if (deliver_budget == 0) {
      disconnect(keep_session_on_drop);
      return;
    }
    if (deliver_budget > 0) --deliver_budget;
    auto [topic, payload] = inbox_.front();
    inbox_.pop_front();
    if (broker->subscriptions.count(topic) == 0) continue;  // unsubscribed before delivery
    const int copies = fate ? fate(topic) : 1;
    if (copies < 0) {  // delayed: delivered after the messages queued behind it
      inbox_.emplace_back(topic, payload);
      continue;
    }
    if (tamper) tamper(topic, payload);
    for (int i = 0; i < copies && !reboot_requested; ++i) {
      broker->delivery_log.push_back(topic);
      agent->on_message(topic.data(), topic.size(), payload.data(), payload.size());
      if (!flash.powered()) return;  // power cut mid-event: the device is dead until boot()
    }
  }
}

// A device provisioned with one bundle (seed 1, `counter`) and booted, beside its in-memory broker: where
// most agent tests start.
struct BootedDevice {
  Broker broker;
  Device dev;
  Bytes old_bundle;
  explicit BootedDevice(uint32_t counter = 1) {
    dev.broker = &broker;
    old_bundle = dev.make_bundle(spec(1, counter));
    dev.provision(old_bundle);
    dev.boot();
  }
};

}  // namespace agenttest
