#include "support/agent_driver.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "agent_harness.h"
#include "support/accepting_crypto.h"
#include "support/component_payloads.h"
#include "support/require.h"
#include "tinyfleet/bytes.h"

namespace fuzzagent {
namespace {

using namespace tinyfleet;
using fuzzsupport::require;
using Bytes = std::vector<uint8_t>;

const char kDevice[] = "dev-0001";
constexpr uint8_t kMaxTrialBoots = 3;
constexpr size_t kSubscriptionMemory = 16;  // topics the Subscribed selector can name

struct Fixture {
  Bytes bundle;
  Bytes meta;
  BundleInfo info;
  uint8_t digest[32];
};

// The fixture bundles, their retained meta and block messages, and the flash with fixture 0 provisioned.
struct World {
  World();
  tftest::TestSigner signer{"fuzz-agent"};
  TrustedKey key;
  Fixture fixtures[kFixtureCount];
  std::map<std::string, Bytes> retained;
  host::FlashLayout layout = host::FlashLayout::dual_bank(kScratchCopySpan, 16, 8, 0xFF, 2);
  Bytes flash[kFlashAreaCount];
};

tftest::BundleSpec fixture_spec(uint8_t index) {
  tftest::BundleSpec s = agenttest::spec(index == 1 || index == 2 ? 10u + index : 1u + index, index == 0 ? 1 : 2);
  // Real calibration and thresholds (2 channels, 4 classes): the running bundle's reach the inference path.
  s.payloads[2] = tftest::thresholds_payload({{-20, false}, {10, true}, {0, false}, {30, true}});
  s.payloads[3] = tftest::calibration_payload({{100, 1 << 16, 0, 256}, {-50, 3 << 15, 10, 512}}, 100);
  if (index == 1) s.payloads[1] = agenttest::spec(1).payloads[1];  // keeps fixture 0's model
  if (index == 2) s.payloads[4][16 + 8] ^= 1;                        // first expected output is wrong
  if (index == 3) {
    s.hardware_class = "esp32s3";
    s.security_counter = 3;
  }
  return s;
}

World::World() {
  host::MbedtlsCrypto crypto;
  key.der = signer.public_der().data();
  key.der_len = static_cast<uint16_t>(signer.public_der().size());
  compute_key_id(crypto, key);
  char topic[kMaxTopicLen];
  for (uint8_t i = 0; i < kFixtureCount; ++i) {
    Fixture& f = fixtures[i];
    f.bundle = tftest::build_bundle(fixture_spec(i), &signer);
    require(parse_prefix(f.bundle.data(), f.bundle.size(), f.info) == Status::Ok, "a fixture bundle parses");
    const uint32_t poff = f.info.header.payload_offset;
    f.meta.assign(f.bundle.begin(), f.bundle.begin() + poff);
    sha256(crypto, f.meta.data(), f.meta.size(), f.digest);
    meta_topic(topic, f.digest);
    retained[topic] = f.meta;
    for (uint8_t c = 0; c < f.info.component_count; ++c) {
      const ComponentEntry& e = f.info.components[c];
      for (uint32_t b = 0; b < block_count(e.length); ++b) {
        const uint32_t n = block_data_len(e.length, b);
        Bytes msg(kBlockHeaderLen + n);
        encode_block(b, e.length, f.bundle.data() + e.offset + b * kBlockSize, n, msg.data(), msg.size());
        block_topic(topic, e.sha256, b);
        retained[topic] = msg;
      }
    }
  }
  host::FlashEmulator emu(layout);
  tftest::Image img;
  BootSelector sel(emu, crypto, kMaxTrialBoots);
  const Bytes& b0 = fixtures[0].bundle;
  require(tftest::make_image(b0.data(), static_cast<uint32_t>(b0.size()), crypto, img) == Status::Ok &&
              tftest::write_image(emu, crypto, 0, img, 4096) == Status::Ok && sel.provision(0, img.desc) == Status::Ok,
          "fixture 0 provisions");
  for (uint8_t a = 0; a < kFlashAreaCount; ++a) flash[a] = emu.raw(static_cast<FlashArea>(a));
}

const World& world() {
  static const World w;
  return w;
}

// The flash port the agent gets: the emulator, with a check of every bank write and erase. Which bank is
// confirmed during a trial is read from the metadata again after each metadata write or erase.
class GuardedFlash final : public Flash {
 public:
  explicit GuardedFlash(host::FlashEmulator& f) : f_(f) {}
  int running_bank = -1;
  FlashGeometry geometry(FlashArea a) const override { return f_.geometry(a); }
  Status read(FlashArea a, uint32_t off, uint8_t* dst, size_t len) override { return f_.read(a, off, dst, len); }
  Status write(FlashArea a, uint32_t off, const uint8_t* src, size_t len) override {
    check(a);
    return f_.write(a, off, src, len);
  }
  Status erase(FlashArea a, uint32_t off, size_t len) override {
    check(a);
    return f_.erase(a, off, len);
  }

 private:
  void check(FlashArea a) {
    if (a == FlashArea::Meta0 || a == FlashArea::Meta1) {
      metadata_known_ = false;
      return;
    }
    if (a != FlashArea::Bank0 && a != FlashArea::Bank1) return;
    const int bank = a == FlashArea::Bank0 ? 0 : 1;
    require(bank != running_bank, "the agent never writes the bank it runs from");
    if (!metadata_known_) {
      MetadataRecord rec;
      const bool trial = MetadataStore(f_).load(rec) == Status::Ok && rec.state == BootState::Trial;
      trial_fallback_ = trial ? rec.confirmed_bank : -1;
      metadata_known_ = true;
    }
    require(bank != trial_fallback_, "the agent never writes the confirmed bank during a trial");
  }
  host::FlashEmulator& f_;
  bool metadata_known_ = false;
  int trial_fallback_ = -1;  // the confirmed bank while a trial is pending
};

class Reader {
 public:
  Reader(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  bool done() const { return pos_ == n_; }
  uint8_t u8() { return pos_ < n_ ? d_[pos_++] : 0; }
  uint16_t u16() {
    const uint8_t lo = u8();
    return static_cast<uint16_t>(lo | u8() << 8);
  }
  // len bytes; those past the end of the input are zero.
  Bytes bytes(size_t len) {
    const size_t n = len < n_ - pos_ ? len : n_ - pos_;
    Bytes out(d_ + pos_, d_ + pos_ + n);
    out.resize(len, 0);
    pos_ += n;
    return out;
  }
  size_t length() { return u16() % kMaxPayload; }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;  // <= n_
};

class Rig final : public ActionSink {
 public:
  Rig() : emu_(world().layout), flash_(emu_) {
    for (uint8_t a = 0; a < kFlashAreaCount; ++a) emu_.raw(static_cast<FlashArea>(a)) = world().flash[a];
    cfg_.device_id = kDevice;
    cfg_.hardware_class = "stm32l4";
    cfg_.keys = &world().key;
    cfg_.key_count = 1;
  }

  void boot();
  void step(Reader& in);
  Summary summary();
  void perform(const Action& a) override;

 private:
  void message(Reader& in);
  void deliver(const std::string& topic, const Bytes& payload);
  Bytes framed_block(const std::string& topic, const Bytes& payload);
  void pump(size_t max);
  void retain(const std::string& topic, const Bytes& payload);
  void retain_desired(const uint8_t digest[32], uint32_t total_len, uint8_t seq, uint8_t flags);
  void connection();
  void session();
  void connect();
  void health(uint8_t b);
  void samples(Reader& in);
  void settle();

  host::FlashEmulator emu_;
  GuardedFlash flash_;
  fuzzsupport::AcceptingCrypto crypto_;
  agenttest::FakePower power_;
  agenttest::FakeClock clock_;
  agenttest::FakeInference inference_;
  AgentConfig cfg_;
  std::unique_ptr<Agent> agent_;
  int16_t ring_[2048] = {};

  bool connected_ = false;
  bool session_ = false;  // the broker holds the session of this boot's last connection
  bool health_due_ = false;
  bool reboot_due_ = false;
  std::set<std::string> subscriptions_;
  std::deque<std::string> subscribed_;  // the latest topics subscribed to, newest first
  std::deque<std::pair<std::string, Bytes>> inbox_;
  std::map<std::string, Bytes> retained_;  // this run's own retained messages (desired states, metas)
  std::deque<uint32_t> unacked_;
  const bool trace_ = std::getenv("FUZZ_AGENT_TRACE") != nullptr;  // events and actions to stderr
  uint32_t counter_floor_ = 0;
  uint32_t last_epoch_ = 0;
  Summary sum_;
};

void Rig::boot() {
  connected_ = session_ = false;
  health_due_ = reboot_due_ = false;
  subscriptions_.clear();
  inbox_.clear();
  unacked_.clear();
  BootSelector sel(flash_, crypto_, kMaxTrialBoots);
  BootDecision d;
  require(sel.select(d) == Status::Ok, "boot selection always finds an image to run");
  flash_.running_bank = d.bank;
  if (agent_) sum_.blocks_fetched += agent_->blocks_fetched();
  agent_ = std::make_unique<Agent>(cfg_, AgentPorts{flash_, crypto_, power_, clock_, inference_, *this});
  agent_->attach_sample_ring(ring_, sizeof ring_ / sizeof ring_[0]);
  agent_->on_boot(d);
  ++sum_.boots;
  require(agent_->progress().epoch > last_epoch_, "the boot epoch rises at every boot");
  last_epoch_ = agent_->progress().epoch;
  settle();
}

// After every event: perform a requested reboot, then check what must hold between events.
void Rig::settle() {
  if (reboot_due_) {
    boot();
    return;
  }
  require(static_cast<uint8_t>(agent_->state()) < kAgentStateCount, "the agent's state is one of its states");
  require(agent_->pending_reports() <= TINYFLEET_REPORT_RING, "the report queue holds at most its ring");
  MetadataRecord rec;
  if (MetadataStore(emu_).load(rec) == Status::Ok) {
    require(rec.security_counter >= counter_floor_, "the stored security counter never goes down");
    counter_floor_ = rec.security_counter;
  }
}

void Rig::perform(const Action& a) {
  char topic[kMaxTopicLen];
  const size_t n = agent_->topic(a, topic);
  if (a.type == ActionType::RunHealthCheck || a.type == ActionType::Reboot) {
    require(n == 0, "a health check or reboot names no topic");
    (a.type == ActionType::Reboot ? reboot_due_ : health_due_) = true;
    return;
  }
  require(n > 0 && n < kMaxTopicLen, "every subscription and publish names a topic that fits");
  const std::string t(topic, n);
  if (trace_) std::fprintf(stderr, "  action %d %s (%zu bytes)\n", static_cast<int>(a.type), t.c_str(), a.len);
  switch (a.type) {
    case ActionType::Subscribe: {
      require(a.retain_handling <= 1, "a subscription's Retain Handling is 0 or 1");
      if (!connected_) break;
      const bool held = !subscriptions_.insert(t).second;
      subscribed_.push_front(t);
      if (subscribed_.size() > kSubscriptionMemory) subscribed_.pop_back();
      if (held && a.retain_handling == 1) break;  // the broker sends no retained copy to a subscription it holds
      auto own = retained_.find(t);
      if (own != retained_.end()) {
        inbox_.emplace_back(t, own->second);
      } else if (auto it = world().retained.find(t); it != world().retained.end()) {
        inbox_.emplace_back(t, it->second);
      }
      break;
    }
    case ActionType::Unsubscribe:
      subscriptions_.erase(t);
      break;
    case ActionType::Publish:
      require(a.payload != nullptr, "a publish has a payload");
      if (a.topic_kind == ActionTopic::State) {
        StateReport r;
        require(a.len == kReportLen && decode_report(a.payload, a.len, r) == Status::Ok, "a state report decodes");
        require(std::memcmp(r.running_digest, agent_->running_digest(), 32) == 0, "a report names the running image");
        sum_.reasons.push_back(r.reason);
        if (connected_) unacked_.push_back(a.token);
      } else if (a.topic_kind == ActionTopic::Presence) {
        Presence p;
        require(a.len == kPresenceLen && decode_presence(a.payload, a.len, p) == Status::Ok, "a presence decodes");
      } else {
        require(a.topic_kind == ActionTopic::Telemetry && a.len >= kTelemetryHeaderLen && a.len <= kMaxTelemetryLen,
                "the agent publishes only reports, presence and telemetry that fits");
      }
      break;
    default:
      break;
  }
}

void Rig::deliver(const std::string& topic, const Bytes& payload) {
  if (trace_) std::fprintf(stderr, "message %s (%zu bytes)\n", topic.c_str(), payload.size());
  agent_->on_message(topic.data(), topic.size(), payload.data(), payload.size());
  settle();
}

void Rig::pump(size_t max) {
  for (size_t i = 0; i < max && connected_ && !inbox_.empty(); ++i) {
    auto [topic, payload] = inbox_.front();
    inbox_.pop_front();
    if (subscriptions_.count(topic) != 0) deliver(topic, payload);
  }
}

void Rig::retain(const std::string& topic, const Bytes& payload) {
  retained_[topic] = payload;
  if (subscriptions_.count(topic) != 0) inbox_.emplace_back(topic, payload);  // queued in a kept session too
}

void Rig::retain_desired(const uint8_t digest[32], uint32_t total_len, uint8_t seq, uint8_t flags) {
  DesiredState d;
  d.flags = flags;
  d.desired_seq = seq;
  std::memcpy(d.digest, digest, 32);
  d.total_len = total_len;
  Bytes msg(kDesiredLen);
  encode_desired(d, msg.data());
  char topic[kMaxTopicLen];
  device_topic(topic, kDevice, DeviceTopic::Desired);
  retain(topic, msg);
}

void Rig::message(Reader& in) {
  const uint8_t sel = in.u8();
  const uint8_t arg = sel >> 3;
  const Fixture& f = world().fixtures[arg % kFixtureCount];
  char topic[kMaxTopicLen] = {};
  std::string t;
  switch (static_cast<TopicSel>(sel & 7)) {
    case FixtureBlock:
      block_topic(topic, f.info.components[(arg / kFixtureCount) % f.info.component_count].sha256, in.u8());
      break;
    case RawTopic: {
      const Bytes raw = in.bytes(in.u8());
      t.assign(raw.begin(), raw.end());
      break;
    }
    default:
      break;
  }
  Bytes payload = in.bytes(in.length());
  switch (static_cast<TopicSel>(sel & 7)) {
    case OwnDesired: device_topic(topic, kDevice, DeviceTopic::Desired); break;
    case OtherTopic:
      if (arg % 5 == 4) {
        device_topic(topic, "dev-0002", DeviceTopic::Desired);
      } else {
        device_topic(topic, kDevice, static_cast<DeviceTopic>(arg % 5));
      }
      break;
    case FixtureMeta: meta_topic(topic, f.digest); break;
    case PayloadMeta: {
      uint8_t digest[32];
      sha256(crypto_, payload.data(), payload.size(), digest);
      meta_topic(topic, digest);
      break;
    }
    case FixtureBlock: case RawTopic: break;
    case FramedBlock: case Subscribed:
      if (subscribed_.empty()) return;
      t = subscribed_[arg % subscribed_.size()];
      break;
  }
  if (t.empty()) t = topic;
  if ((sel & 7) == FramedBlock) payload = framed_block(t, payload);
  deliver(t, payload);
}

// The payload as a well-formed block (header and CRC) for a block topic: its index from the topic, its
// component length from the fixture block retained there (else the payload's length), data cut to fit.
Bytes Rig::framed_block(const std::string& topic, const Bytes& payload) {
  const ParsedTopic p = parse_topic(topic.data(), topic.size(), kDevice);
  uint32_t component_len = static_cast<uint32_t>(payload.size());
  if (auto it = world().retained.find(topic); it != world().retained.end()) {
    BlockHeader h;
    const uint8_t* data = nullptr;
    size_t n = 0;
    if (decode_block(it->second.data(), it->second.size(), h, data, n) == Status::Ok) component_len = h.component_len;
  }
  const uint32_t n = p.index < block_count(component_len) ? block_data_len(component_len, p.index) : 0;
  Bytes data(payload.begin(), payload.begin() + (n < payload.size() ? n : payload.size()));
  data.resize(n, 0);
  data.push_back(0);  // never empty: encode_block copies from data() even for no bytes
  Bytes msg(kBlockHeaderLen + n);
  encode_block(p.index, component_len, data.data(), n, msg.data(), msg.size());
  return msg;
}

void Rig::connection() {
  if (connected_) {
    connected_ = session_ = false;
    subscriptions_.clear();
    inbox_.clear();
    unacked_.clear();
    agent_->on_connection_down();
    settle();
  } else {
    connect();
  }
}

// The connection drops and the broker keeps the session: subscriptions, and what was queued or in flight.
void Rig::session() {
  if (!connected_) {
    connect();
    return;
  }
  connected_ = false;
  unacked_.clear();
  agent_->on_connection_down();
  settle();
}

void Rig::connect() {
  uint8_t will[kPresenceLen];
  Action a{};
  agent_->will(will, a);
  Presence p;
  require(a.type == ActionType::Publish && a.topic_kind == ActionTopic::Presence && a.payload == will &&
              a.len == kPresenceLen && decode_presence(will, sizeof will, p) == Status::Ok && p.status == 0,
          "the will is an offline presence");
  if (agent_->connect_options().clean_start) {  // Clean Start: the broker discards what it held
    session_ = false;
    subscriptions_.clear();
    inbox_.clear();
  }
  connected_ = true;
  const bool present = session_;
  session_ = true;
  agent_->on_connection_up(present);
  settle();
}

void Rig::health(uint8_t b) {
  if ((b & 1) == 0) {
    if (!health_due_) return;
    health_due_ = false;
    agent_->run_health_check();
  } else {
    static const Reason kOutcomes[] = {Reason::None, Reason::HealthOutputMismatch, Reason::HealthLatency,
                                       Reason::HealthRam, Reason::HealthBrokerTimeout, Reason::HealthInference};
    HealthOutcome r;
    r.reason = kOutcomes[(b >> 1) % (sizeof kOutcomes / sizeof kOutcomes[0])];
    r.detail0 = b;
    agent_->on_health_result(r);
  }
  settle();
}

void Rig::samples(Reader& in) {
  const uint32_t frames = in.u8() % 9;
  const uint16_t channels = agent_->calibration().channel_count;
  int16_t raw[8 * kMaxChannels] = {};
  for (uint32_t i = 0; i < frames * channels; ++i) raw[i] = static_cast<int16_t>(in.u16());
  agent_->on_samples(raw, frames);
  const Bytes out = in.bytes(4);
  const Decision d = agent_->on_inference(out.data(), out.size(), in.u16());
  require(d.winner >= -1 && d.winner < 4, "a decision names one of the output's classes");
  settle();
}

void Rig::step(Reader& in) {
  const uint8_t op = in.u8() % kOpCount;
  if (trace_) std::fprintf(stderr, "op %u, agent state %u\n", op, static_cast<unsigned>(agent_->state()));
  switch (op) {
    case Message: message(in); break;
    case Pump: pump(in.u8() % 16 + 1u); break;
    case Drain: pump(512); break;
    case Desired: {
      const Fixture& f = world().fixtures[in.u8() % kFixtureCount];
      const uint8_t seq = in.u8();
      retain_desired(f.digest, f.info.header.total_len, seq, in.u8());
      break;
    }
    case DesiredFor: {
      const Bytes meta = in.bytes(in.length());
      uint8_t digest[32];
      sha256(crypto_, meta.data(), meta.size(), digest);
      char topic[kMaxTopicLen];
      meta_topic(topic, digest);
      retain(topic, meta);
      BundleHeader h;
      const bool header = meta.size() >= kHeaderLen && parse_header(meta.data(), meta.size(), h) == Status::Ok;
      const uint32_t total = header ? h.total_len : 0;
      retain_desired(digest, total, in.u8(), 0);
      break;
    }
    case Tick:
      clock_.advance_ms((in.u8() + 1u) * 500u);
      agent_->on_tick();
      settle();
      break;
    case Connection: connection(); break;
    case Session: session(); break;
    case Battery:
      power_.pct = in.u8() % 101;
      agent_->on_battery(power_.pct);
      settle();
      break;
    case Ack:
      if (!unacked_.empty()) {
        agent_->on_publish_acked(unacked_.front());
        unacked_.pop_front();
        settle();
      }
      break;
    case Health: health(in.u8()); break;
    case Reboot: boot(); break;
    case Samples: samples(in); break;
  }
}

Summary Rig::summary() {
  Summary s = sum_;
  s.blocks_fetched += agent_->blocks_fetched();
  s.state = agent_->state();
  for (uint8_t i = 0; i < kFixtureCount; ++i) {
    if (std::memcmp(agent_->running_digest(), world().fixtures[i].digest, 32) == 0) s.running_fixture = i;
  }
  MetadataRecord rec;
  if (MetadataStore(emu_).load(rec) == Status::Ok) {
    s.boot_state = rec.state;
    s.security_counter = rec.security_counter;
  }
  s.scratch = emu_.raw(FlashArea::Scratch);
  return s;
}

}  // namespace

bool Summary::has_reason(tinyfleet::Reason r) const {
  for (uint16_t v : reasons) {
    if (v == static_cast<uint16_t>(r)) return true;
  }
  return false;
}

const std::vector<uint8_t>& fixture_bundle(uint8_t index) { return world().fixtures[index % kFixtureCount].bundle; }
const std::vector<uint8_t>& fixture_meta(uint8_t index) { return world().fixtures[index % kFixtureCount].meta; }

Summary run(const uint8_t* data, size_t size) {
  auto rig = std::make_unique<Rig>();
  rig->boot();
  Reader in(data, size);
  for (size_t i = 0; i < kMaxOps && !in.done(); ++i) rig->step(in);
  return rig->summary();
}

}  // namespace fuzzagent
