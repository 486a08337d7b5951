#include "tinyfleet/protocol.h"

#include <cstddef>
#include <cstring>

#include "tinyfleet/bytes.h"

namespace tinyfleet {
namespace {

// Device topics have a level of their own, so no device id can reach a server-owned topic.
constexpr char kDevices[] = "fleet/d/";

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

bool has_magic(const uint8_t* p, const char* magic, uint8_t version) {
  return std::memcmp(p, magic, 4) == 0 && p[4] == version;
}

// Appends s to out at pos; false if out (kMaxTopicLen incl. NUL) would overflow.
bool put(char* out, size_t& pos, const char* s, size_t n) {
  if (pos + n + 1 > kMaxTopicLen) return false;
  std::memcpy(out + pos, s, n);
  pos += n;
  out[pos] = '\0';
  return true;
}
bool put(char* out, size_t& pos, const char* s) { return put(out, pos, s, std::strlen(s)); }

bool put_u32(char* out, size_t& pos, uint32_t v) {
  char digits[10];
  size_t first = sizeof digits;  // written from the last digit back
  do {
    digits[--first] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return put(out, pos, digits + first, sizeof digits - first);
}

bool id_char(char c, bool first) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return !first && (c == '.' || c == '_' || c == '-');
}

bool starts_with(const char* s, size_t len, const char* prefix, size_t plen) {
  return len >= plen && std::memcmp(s, prefix, plen) == 0;
}

// Decimal without leading zeros, fits u32.
bool parse_index(const char* s, size_t len, uint32_t& out) {
  if (len == 0 || len > 10 || (len > 1 && s[0] == '0')) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < len; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + static_cast<uint64_t>(s[i] - '0');
  }
  if (v > 0xFFFFFFFFu) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

}  // namespace

Reason reason_from_status(Status s) {
  if (is_bundle_verdict(s)) {
    return static_cast<Reason>(static_cast<uint8_t>(s) - static_cast<uint8_t>(Status::BadMagic) + 1);
  }
  switch (s) {
    case Status::Ok: return Reason::None;
    case Status::BundleTooLarge: return Reason::TooLarge;
    case Status::BatteryLow: return Reason::BatteryLow;
    case Status::MalformedMessage: return Reason::BadDesired;
    default: return Reason::FlashError;
  }
}

bool valid_device_id(const char* id) {
  if (id == nullptr) return false;
  size_t n = std::strlen(id);
  if (n == 0 || n > kMaxDeviceIdLen) return false;
  for (size_t i = 0; i < n; ++i) {
    if (!id_char(id[i], i == 0)) return false;
  }
  return true;
}

void to_hex(const uint8_t* data, size_t len, char* out) {
  static const char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < len; ++i) {
    out[2 * i] = kHex[data[i] >> 4];
    out[2 * i + 1] = kHex[data[i] & 15];
  }
}

bool from_hex(const char* hex, size_t hex_len, uint8_t* out) {
  if (hex_len % 2 != 0) return false;
  for (size_t i = 0; i < hex_len; ++i) {
    char c = hex[i];
    uint8_t v;
    if (c >= '0' && c <= '9') {
      v = static_cast<uint8_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v = static_cast<uint8_t>(c - 'a' + 10);
    } else {
      return false;  // lowercase only, as the topics are written
    }
    if (i % 2 == 0) {
      out[i / 2] = static_cast<uint8_t>(v << 4);
    } else {
      out[i / 2] = static_cast<uint8_t>(out[i / 2] | v);
    }
  }
  return true;
}

uint8_t device_shard(const char* device_id) {
  uint32_t h = 2166136261u;  // FNV-1a, 32 bits
  for (const char* c = device_id; *c != '\0'; ++c) {
    h = (h ^ static_cast<uint8_t>(*c)) * 16777619u;
  }
  return static_cast<uint8_t>(h);
}

bool device_topic(char* out, const char* device_id, DeviceTopic which) {
  if (!valid_device_id(device_id)) return false;
  static const char* const kSuffix[] = {"/desired", "/state", "/telemetry", "/presence"};
  const uint8_t shard = device_shard(device_id);
  char level[4];
  to_hex(&shard, 1, level);
  level[2] = '/';
  level[3] = '\0';
  size_t pos = 0;
  return put(out, pos, kDevices) && put(out, pos, level) && put(out, pos, device_id) &&
         put(out, pos, kSuffix[static_cast<uint8_t>(which)]);
}

namespace {
// prefix + the digest in hex + suffix; pos is left at the end.
bool digest_topic(char* out, size_t& pos, const char* prefix, const uint8_t digest[32], const char* suffix) {
  pos = 0;
  if (!put(out, pos, prefix) || pos + 64 >= kMaxTopicLen) return false;
  to_hex(digest, 32, out + pos);
  pos += 64;
  return put(out, pos, suffix);
}
}  // namespace

bool meta_topic(char* out, const uint8_t digest[32]) {
  size_t pos;
  return digest_topic(out, pos, "fleet/bundles/", digest, "/meta");
}

bool block_topic(char* out, const uint8_t sha256[32], uint32_t index) {
  size_t pos;
  return digest_topic(out, pos, "fleet/blobs/", sha256, "/b/") && put_u32(out, pos, index);
}

ParsedTopic parse_topic(const char* topic, size_t len, const char* device_id) {
  ParsedTopic r;
  std::memset(static_cast<void*>(&r), 0, sizeof r);  // its defaults: cheaper than copying a default image
  static const char kBundles[] = "fleet/bundles/";
  static const char kBlobs[] = "fleet/blobs/";
  const size_t nb = sizeof(kBundles) - 1;
  const size_t nl = sizeof(kBlobs) - 1;
  if (starts_with(topic, len, kBundles, nb)) {
    if (len == nb + 64 + 5 && std::memcmp(topic + nb + 64, "/meta", 5) == 0 && from_hex(topic + nb, 64, r.digest)) {
      r.kind = TopicKind::Meta;
    }
    return r;
  }
  if (starts_with(topic, len, kBlobs, nl)) {
    if (len > nl + 64 + 3 && std::memcmp(topic + nl + 64, "/b/", 3) == 0 && from_hex(topic + nl, 64, r.digest) &&
        parse_index(topic + nl + 67, len - nl - 67, r.index)) {
      r.kind = TopicKind::Block;
    }
    return r;
  }
  char want[kMaxTopicLen];
  if (device_topic(want, device_id, DeviceTopic::Desired) && std::strlen(want) == len &&
      std::memcmp(want, topic, len) == 0) {
    r.kind = TopicKind::Desired;
  }
  return r;
}

// --- TFDS -----------------------------------------------------------------------------------------

namespace {
#define FIELD(wire, member) \
  WireField { wire, offsetof(DesiredState, member), sizeof(DesiredState::member) }
constexpr WireField kDesiredFields[] = {
    FIELD(5, flags), FIELD(8, desired_seq), FIELD(12, digest), FIELD(44, total_len), FIELD(52, rollback_digest),
};
#undef FIELD
}  // namespace

Status decode_desired(const uint8_t* p, size_t len, DesiredState& out) {
  if (len != kDesiredLen || !has_magic(p, "TFDS", 1)) return Status::MalformedMessage;
  if ((p[5] & ~kDesiredRollback) != 0 || !all_zero(p + 6, 2) || !all_zero(p + 49, 3)) return Status::MalformedMessage;
  if (p[48] != kBlockSizeLog2) return Status::MalformedMessage;
  if (load_u32le(p + 8) == 0) return Status::MalformedMessage;  // desired_seq
  load_fields(&out, p, kDesiredFields, sizeof kDesiredFields / sizeof kDesiredFields[0]);
  return Status::Ok;
}

void encode_desired(const DesiredState& in, uint8_t out[kDesiredLen]) {
  encode_record(out, kDesiredLen, "TFDS", &in, kDesiredFields, sizeof kDesiredFields / sizeof kDesiredFields[0]);
  out[48] = kBlockSizeLog2;
}

// --- TFBK -----------------------------------------------------------------------------------------

uint32_t block_data_len(uint32_t component_len, uint32_t index) {
  uint32_t start = index * kBlockSize;
  if (index >= block_count(component_len)) return 0;
  uint32_t rest = component_len - start;
  return rest < kBlockSize ? rest : kBlockSize;
}

Status decode_block(const uint8_t* p, size_t len, BlockHeader& out, const uint8_t*& data, size_t& data_len) {
  if (len < kBlockHeaderLen || !has_magic(p, "TFBK", 1) || p[5] != kBlockSizeLog2 || !all_zero(p + 6, 2)) {
    return Status::MalformedMessage;
  }
  out.index = load_u32le(p + 8);
  out.component_len = load_u32le(p + 12);
  out.crc32 = load_u32le(p + 16);
  uint32_t want = block_data_len(out.component_len, out.index);
  if (want == 0 || len - kBlockHeaderLen != want) return Status::MalformedMessage;
  if (crc32_ieee(p + kBlockHeaderLen, want) != out.crc32) return Status::MalformedMessage;
  data = p + kBlockHeaderLen;
  data_len = want;
  return Status::Ok;
}

size_t encode_block(uint32_t index, uint32_t component_len, const uint8_t* data, size_t data_len, uint8_t* out,
                    size_t out_cap) {
  if (out_cap < kBlockHeaderLen + data_len) return 0;
  encode_record(out, kBlockHeaderLen, "TFBK", nullptr, nullptr, 0);
  out[5] = kBlockSizeLog2;
  store_u32le(out + 8, index);
  store_u32le(out + 12, component_len);
  store_u32le(out + 16, crc32_ieee(data, data_len));
  std::memcpy(out + kBlockHeaderLen, data, data_len);
  return kBlockHeaderLen + data_len;
}

// --- TFSR -----------------------------------------------------------------------------------------

namespace {
#define FIELD(wire, member) \
  WireField { wire, offsetof(StateReport, member), sizeof(StateReport::member) }
constexpr WireField kReportFields[] = {
    FIELD(5, from_state),       FIELD(6, to_state),        FIELD(7, event),          FIELD(8, epoch),
    FIELD(12, seq),             FIELD(16, reason),         FIELD(20, desired_seq),   FIELD(24, target_digest),
    FIELD(56, running_digest),  FIELD(88, detail0),        FIELD(92, detail1),       FIELD(96, device_time),
};
#undef FIELD
}  // namespace

void encode_report(const StateReport& in, uint8_t out[kReportLen]) {
  encode_record(out, kReportLen, "TFSR", &in, kReportFields, sizeof kReportFields / sizeof kReportFields[0]);
}

Status decode_report(const uint8_t* p, size_t len, StateReport& out) {
  if (len != kReportLen || !has_magic(p, "TFSR", 1) || !all_zero(p + 18, 2)) return Status::MalformedMessage;
  load_fields(&out, p, kReportFields, sizeof kReportFields / sizeof kReportFields[0]);
  return Status::Ok;
}

// --- TFPR -----------------------------------------------------------------------------------------

Presence::Presence() {
  std::memset(static_cast<void*>(this), 0, sizeof *this);
  image_state = 1;
}

namespace {
#define FIELD(wire, member) \
  WireField { wire, offsetof(Presence, member), sizeof(Presence::member) }
// All but hardware_class: up to 32 characters on the wire, NUL-terminated in memory.
constexpr WireField kPresenceFields[] = {
    FIELD(5, status),          FIELD(6, image_state),  FIELD(8, epoch),
    FIELD(12, last_seq),       FIELD(16, running_digest), FIELD(80, bank_size),
    FIELD(84, security_counter), FIELD(88, device_time),
};
#undef FIELD
}  // namespace

void encode_presence(const Presence& in, uint8_t out[kPresenceLen]) {
  encode_record(out, kPresenceLen, "TFPR", &in, kPresenceFields, sizeof kPresenceFields / sizeof kPresenceFields[0]);
  std::memcpy(out + 48, in.hardware_class, strnlen(in.hardware_class, 32));
}

Status decode_presence(const uint8_t* p, size_t len, Presence& out) {
  if (len != kPresenceLen || !has_magic(p, "TFPR", 1) || p[7] != 0 || p[5] > 2) return Status::MalformedMessage;
  load_fields(&out, p, kPresenceFields, sizeof kPresenceFields / sizeof kPresenceFields[0]);
  std::memcpy(out.hardware_class, p + 48, 32);
  out.hardware_class[32] = '\0';
  return Status::Ok;
}

}  // namespace tinyfleet
