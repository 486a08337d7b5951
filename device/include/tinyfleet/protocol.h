// docs/device-protocol.md as code: topic names, the five binary payloads (TFDS desired, TFBK block,
// TFSR state report, TFTM telemetry, TFPR presence) and the reason codes. Pure encode/decode over
// caller-owned buffers; decoders check length, magic, version and reserved bytes before any field.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/status.h"

namespace tinyfleet {

constexpr uint32_t kBlockSizeLog2 = 12;
constexpr uint32_t kBlockSize = 1u << kBlockSizeLog2;
constexpr size_t kDesiredLen = 84;
constexpr size_t kBlockHeaderLen = 20;
constexpr size_t kReportLen = 104;
constexpr size_t kPresenceLen = 96;
constexpr size_t kTelemetryHeaderLen = 156;
constexpr size_t kTelemetryChannelLen = 12;
constexpr uint8_t kTelemetryBins = 16;
constexpr size_t kMaxDeviceIdLen = 64;
// "fleet/blobs/" + 64 hex + "/b/" + up to 10 digits, and "fleet/<64>/telemetry", fit with room.
constexpr size_t kMaxTopicLen = 96;

// Wire codes (TFSR reason): never renumber. docs/device-protocol.md "Reason codes".
enum class Reason : uint16_t {
  None = 0,
  // 1..18: bundle verdicts in docs/bundle-format.md order (see reason_from_status).
  HashMismatch = 18,
  BadDesired = 32,
  StaleDesired = 33,
  UpToDate = 34,
  Superseded = 35,
  MetaMismatch = 36,
  TooLarge = 37,
  BatteryLow = 38,
  BadBlock = 39,
  FlashError = 40,
  PreviouslyFailed = 41,
  HealthOutputMismatch = 64,
  HealthLatency = 65,
  HealthRam = 66,
  HealthBrokerTimeout = 67,
  HealthInference = 68,
  TrialExhausted = 69,
  HealthFeatureExtractor = 70,
  Resumed = 96,
  ComponentReady = 97,
  Staged = 98,
  Confirmed = 99,
};

// Bundle verdicts map to 1..18; other statuses to their agent reason (flash failures -> FlashError).
Reason reason_from_status(Status s);

// A device id usable in topics and as a broker username: 1..64 chars, ^[A-Za-z0-9][A-Za-z0-9._-]*$.
bool valid_device_id(const char* id);

// The device's shard, 0..255 (the low byte of the FNV-1a-32 hash of its id): the level after `fleet/d/` in
// its topics, written as two lowercase hex digits, so server replicas can split ingest by topic.
uint8_t device_shard(const char* device_id);

// Topic builders: write a NUL-terminated topic into out[kMaxTopicLen]; false if it does not fit.
// Device topics: fleet/d/<shard>/<device>/{desired,state,telemetry,presence} (docs/device-protocol.md).
enum class DeviceTopic : uint8_t { Desired, State, Telemetry, Presence };
bool device_topic(char* out, const char* device_id, DeviceTopic which);
bool meta_topic(char* out, const uint8_t digest[32]);
bool block_topic(char* out, const uint8_t sha256[32], uint32_t index);

// Topic parsing for incoming messages.
enum class TopicKind : uint8_t { Unknown, Desired, Meta, Block };
struct ParsedTopic {
  TopicKind kind = TopicKind::Unknown;
  uint8_t digest[32] = {};  // Meta: bundle digest; Block: component sha256
  uint32_t index = 0;       // Block: n
};
ParsedTopic parse_topic(const char* topic, size_t len, const char* device_id);

void to_hex(const uint8_t* data, size_t len, char* out);  // 2*len chars, lowercase, no NUL
bool from_hex(const char* hex, size_t hex_len, uint8_t* out);

// --- TFDS -----------------------------------------------------------------------------------------
struct DesiredState {
  uint8_t flags = 0;  // bit 0 ROLLBACK
  uint32_t desired_seq = 0;
  uint8_t digest[32] = {};
  uint32_t total_len = 0;
  uint8_t rollback_digest[32] = {};
};
constexpr uint8_t kDesiredRollback = 0x01;
// Ok (every member of out written), or MalformedMessage (length, magic, version, flags, reserved,
// desired_seq 0, block size) with out untouched.
Status decode_desired(const uint8_t* data, size_t len, DesiredState& out);
void encode_desired(const DesiredState& in, uint8_t out[kDesiredLen]);

// --- TFBK -----------------------------------------------------------------------------------------
struct BlockHeader {
  uint32_t index = 0;
  uint32_t component_len = 0;
  uint32_t crc32 = 0;
};
// Number of blocks of a component of `len` bytes, and the data length of block `index`.
constexpr uint32_t block_count(uint32_t len) { return (len + kBlockSize - 1) / kBlockSize; }
uint32_t block_data_len(uint32_t component_len, uint32_t index);
// Checks header fields, the data length for (index, component_len) and the CRC. On Ok, data/data_len
// point into `msg` at the block's data.
Status decode_block(const uint8_t* msg, size_t len, BlockHeader& out, const uint8_t*& data, size_t& data_len);
// Writes the 20-byte header + data (for tests and the Python binding's server side).
size_t encode_block(uint32_t index, uint32_t component_len, const uint8_t* data, size_t data_len, uint8_t* out,
                    size_t out_cap);

// --- TFSR -----------------------------------------------------------------------------------------
struct StateReport {
  uint8_t from_state = 0;
  uint8_t to_state = 0;
  uint8_t event = 0;
  uint32_t epoch = 0;
  uint32_t seq = 0;
  uint16_t reason = 0;
  uint32_t desired_seq = 0;
  uint8_t target_digest[32] = {};
  uint8_t running_digest[32] = {};
  uint32_t detail0 = 0;
  uint32_t detail1 = 0;
  uint64_t device_time = 0;
};
void encode_report(const StateReport& in, uint8_t out[kReportLen]);
Status decode_report(const uint8_t* data, size_t len, StateReport& out);

// --- TFPR -----------------------------------------------------------------------------------------
struct Presence {
  // Every member zero but image_state, 1. Out of line (users call it instead of each copying a default
  // image) and one memset: the defaults live there, not in member initialisers.
  Presence();
  uint8_t status;  // 0 offline (will), 1 online, 2 rebooting
  uint8_t image_state;
  uint32_t epoch;
  uint32_t last_seq;
  uint8_t running_digest[32];
  char hardware_class[33];
  uint32_t bank_size;
  uint32_t security_counter;
  uint64_t device_time;
};
void encode_presence(const Presence& in, uint8_t out[kPresenceLen]);
Status decode_presence(const uint8_t* data, size_t len, Presence& out);

}  // namespace tinyfleet
