// fuzz_agent's driver: a real Agent on the host port (NOR flash emulator, mbedTLS hashing) run through a
// sequence of events decoded from bytes, with an in-memory broker that holds the retained messages of four
// fixture bundles. Every invariant breach aborts (libFuzzer's crash); the Summary of a run is what the seed
// check (fuzz_seeds) asserts about the committed seeds.
//
// Input format: a sequence of operations, each an opcode byte (taken modulo kOpCount) and its operands;
// operands past the end of the input read as zero bytes. At most kMaxOps operations run.
//   Message     u8 selector (low 3 bits: TopicSel, high 5 bits: its argument), the selector's own operands,
//               u16le payload length (modulo kMaxPayload), payload: Agent::on_message on that topic, connected or not
//   Pump        u8 n: deliver up to n % 16 + 1 queued broker messages (while connected)
//   Drain       deliver queued broker messages until none is left (at most 512)
//   Desired     u8 fixture, u8 desired_seq, u8 flags: retain a desired state for a fixture bundle (queued
//               if the agent subscribed to its desired topic)
//   DesiredFor  u16le length (modulo kMaxPayload), bytes, u8 desired_seq: retain the bytes as the meta of
//               digest SHA-256(bytes) and a desired state for that digest (total_len from their header if it
//               parses)
//   Tick        u8 s: the clock advances (s + 1) * 500 ms, then on_tick
//   Connection  connect if disconnected (will, then on_connection_up), else disconnect (the broker forgets
//               the session)
//   Session     connect if disconnected, else disconnect with the broker keeping the session (its
//               subscriptions, and what was queued or in flight for them, delivered after a reconnect with
//               Session Present; a connect with Clean Start discards it)
//   Battery     u8 pct: on_battery(pct % 101)
//   Ack         acknowledge the oldest unacknowledged state report
//   Health      u8 b: even b runs a requested health check; odd b hands on_health_result a result
//   Reboot      power cycle: boot selection, a new Agent, on_boot
//   Samples     u8 frames (% 9), int16le samples, 4 output bytes, u16le latency: on_samples, on_inference
// A Reboot action is performed as soon as the event that asked for it returns.
//
// Invariants checked: the agent never writes or erases the bank it runs from, nor the confirmed bank while a
// trial is pending; boot selection always finds a bootable image; the stored security counter never goes
// down; the boot epoch rises at every boot; at most TINYFLEET_REPORT_RING reports wait for acknowledgement;
// every action names a topic that fits kMaxTopicLen; a subscription's Retain Handling is 0 or 1; every state report and presence it publishes decodes
// (with the running digest), every telemetry record fits kMaxTelemetryLen; the will is an offline presence.
// ASan and UBSan check the rest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tinyfleet/metadata.h"
#include "tinyfleet/protocol.h"
#include "tinyfleet/transitions.h"

namespace fuzzagent {

enum Op : uint8_t {
  Message, Pump, Drain, Desired, DesiredFor, Tick, Connection, Battery, Ack, Health, Reboot, Samples, Session
};
constexpr uint8_t kOpCount = 13;
constexpr size_t kMaxOps = 256;
constexpr size_t kMaxPayload = 8192;  // u16le lengths are taken modulo this

// Message topics. OwnDesired: the device's desired topic. OtherTopic: arg % 5 picks the device's desired,
// state, telemetry or presence topic, or another device's desired topic. FixtureMeta: the meta topic of
// bundle arg % 4. PayloadMeta: the meta topic of SHA-256(payload). FixtureBlock: bundle arg % 4, component
// (arg / 4) % 5, then a u8 block index. RawTopic: u8 length, the topic's bytes. FramedBlock: like
// Subscribed, with the payload made a well-formed block for that topic (header, CRC; data cut to its
// length). Subscribed: the (arg % n)-th latest of the last n topics the agent subscribed to (while it has
// subscribed to none, nothing is delivered).
enum TopicSel : uint8_t {
  OwnDesired, OtherTopic, FixtureMeta, PayloadMeta, FixtureBlock, RawTopic, FramedBlock, Subscribed
};

// The fixture bundles (signed by the trusted key): 0 runs at the start (counter 1); 1 is an update (counter
// 2) that keeps 0's model, calibration and thresholds; 2 is an update whose health vectors the model fails;
// 3 is for another hardware class (refused by policy).
constexpr uint8_t kFixtureCount = 4;
constexpr uint32_t kScratchCopySpan = 4096;
const std::vector<uint8_t>& fixture_bundle(uint8_t index);
const std::vector<uint8_t>& fixture_meta(uint8_t index);  // the bundle's prefix (what meta/<digest> retains)

struct Summary {
  uint32_t boots = 0;
  int running_fixture = -1;  // which fixture bundle runs at the end (-1: none of them)
  tinyfleet::AgentState state = tinyfleet::AgentState::PowerOn;
  tinyfleet::BootState boot_state = tinyfleet::BootState::Confirmed;
  uint32_t security_counter = 0;
  uint32_t blocks_fetched = 0;    // block messages written, over every boot
  std::vector<uint16_t> reasons;  // the reason of every state report published, in order
  std::vector<uint8_t> scratch;   // the Scratch area (two progress-record copies, kScratchCopySpan apart)
  bool has_reason(tinyfleet::Reason r) const;
};

Summary run(const uint8_t* data, size_t size);

// Builds inputs in the format above (the seed generator's half of the format).
struct Script {
  std::vector<uint8_t> bytes;
  Script& op(Op o) { bytes.push_back(o); return *this; }
  Script& u8(uint8_t v) { bytes.push_back(v); return *this; }
  Script& u16(uint16_t v) { return u8(static_cast<uint8_t>(v)).u8(static_cast<uint8_t>(v >> 8)); }
  Script& raw(const std::vector<uint8_t>& b) { bytes.insert(bytes.end(), b.begin(), b.end()); return *this; }
  Script& connection() { return op(Connection); }
  Script& session() { return op(Session); }
  Script& drain() { return op(Drain); }
  Script& pump(uint8_t n) { return op(Pump).u8(n); }
  Script& desired(uint8_t fixture, uint8_t seq, uint8_t flags = 0) { return op(Desired).u8(fixture).u8(seq).u8(flags); }
  Script& desired_for(const std::vector<uint8_t>& meta, uint8_t seq) {
    return op(DesiredFor).u16(static_cast<uint16_t>(meta.size())).raw(meta).u8(seq);
  }
  Script& tick(uint8_t s) { return op(Tick).u8(s); }
  Script& battery(uint8_t pct) { return op(Battery).u8(pct); }
  Script& ack() { return op(Ack); }
  Script& health_check() { return op(Health).u8(0); }
  Script& reboot() { return op(Reboot); }
  Script& message(TopicSel sel, uint8_t arg, const std::vector<uint8_t>& topic_operands,
                  const std::vector<uint8_t>& payload) {
    return op(Message).u8(static_cast<uint8_t>(sel | arg << 3)).raw(topic_operands)
        .u16(static_cast<uint16_t>(payload.size())).raw(payload);
  }
};

}  // namespace fuzzagent
