// docs/device-protocol.md codecs: exact offsets of every record, topic names, block sizing and the
// checks decoders make before reading fields.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tinyfleet/bytes.h"
#include "tinyfleet/protocol.h"

using namespace tinyfleet;

namespace {
uint8_t digest_of(uint8_t seed, int i) { return static_cast<uint8_t>(seed + i * 7); }
void fill(uint8_t* d, uint8_t seed) {
  for (int i = 0; i < 32; ++i) d[i] = digest_of(seed, i);
}
}  // namespace

TEST(Protocol, Topics) {
  char t[kMaxTopicLen];
  ASSERT_TRUE(device_topic(t, "dev-0001", DeviceTopic::Desired));
  EXPECT_STREQ(t, "fleet/d/a0/dev-0001/desired");
  ASSERT_TRUE(device_topic(t, "a.b_c-d", DeviceTopic::Telemetry));
  EXPECT_STREQ(t, "fleet/d/37/a.b_c-d/telemetry");
  // Ids that were server-owned topic levels in v1 sit under fleet/d/ like any other.
  ASSERT_TRUE(device_topic(t, "bundles", DeviceTopic::State));
  EXPECT_STREQ(t, "fleet/d/c2/bundles/state");
  EXPECT_FALSE(device_topic(t, "a:b", DeviceTopic::State));  // ':' ends a password-file user name
  EXPECT_FALSE(device_topic(t, "dev-1\n", DeviceTopic::State));
  EXPECT_FALSE(device_topic(t, "bad/id", DeviceTopic::State));
  EXPECT_FALSE(device_topic(t, "+", DeviceTopic::State));
  EXPECT_FALSE(device_topic(t, "-starts-with-dash", DeviceTopic::State));
  EXPECT_FALSE(device_topic(t, "", DeviceTopic::State));
  std::string id64(64, 'a');
  ASSERT_TRUE(device_topic(t, id64.c_str(), DeviceTopic::Telemetry));
  EXPECT_FALSE(device_topic(t, (id64 + "a").c_str(), DeviceTopic::Telemetry));
  EXPECT_EQ(std::strlen(t), 8u + 3u + 64u + 10u);  // the longest device topic fits kMaxTopicLen
  EXPECT_EQ(device_shard("dev-0001"), 0xa0);
  EXPECT_EQ(device_shard(id64.c_str()), 0x85);

  uint8_t d[32];
  fill(d, 1);
  ASSERT_TRUE(meta_topic(t, d));
  EXPECT_EQ(std::string(t), "fleet/bundles/01080f161d242b323940474e555c636a71787f868d949ba2a9b0b7bec5ccd3da/meta");
  ParsedTopic p = parse_topic(t, std::strlen(t), "dev-0001");
  EXPECT_EQ(p.kind, TopicKind::Meta);
  EXPECT_EQ(std::memcmp(p.digest, d, 32), 0);

  ASSERT_TRUE(block_topic(t, d, 4294967295u));
  EXPECT_EQ(std::string(t).substr(76), "/b/4294967295");
  p = parse_topic(t, std::strlen(t), "dev-0001");
  EXPECT_EQ(p.kind, TopicKind::Block);
  EXPECT_EQ(p.index, 4294967295u);
  ASSERT_TRUE(block_topic(t, d, 0));
  EXPECT_EQ(parse_topic(t, std::strlen(t), "x").index, 0u);

  auto kind = [](const std::string& s) { return parse_topic(s.data(), s.size(), "dev-0001").kind; };
  EXPECT_EQ(kind("fleet/d/a0/dev-0001/desired"), TopicKind::Desired);
  EXPECT_EQ(kind("fleet/d/a1/dev-0001/desired"), TopicKind::Unknown);  // another shard
  EXPECT_EQ(kind("fleet/d/A0/dev-0001/desired"), TopicKind::Unknown);
  EXPECT_EQ(kind("fleet/dev-0001/desired"), TopicKind::Unknown);  // v1
  EXPECT_EQ(kind("fleet/d/a0/dev-0002/desired"), TopicKind::Unknown);
  EXPECT_EQ(kind("fleet/d/a0/dev-0001/desired/x"), TopicKind::Unknown);
  std::string blob = std::string(t).substr(0, 76);
  EXPECT_EQ(kind(blob + "/b/01"), TopicKind::Unknown);  // leading zero
  EXPECT_EQ(kind(blob + "/b/"), TopicKind::Unknown);
  EXPECT_EQ(kind(blob + "/b/4294967296"), TopicKind::Unknown);
  EXPECT_EQ(kind(blob + "/b/1a"), TopicKind::Unknown);
  std::string upper = std::string(t);
  upper[12] = 'A';
  EXPECT_EQ(kind(upper), TopicKind::Unknown);  // hex is lowercase
}

TEST(Protocol, DesiredStateLayout) {
  DesiredState d;
  d.flags = kDesiredRollback;
  d.desired_seq = 0x01020304;
  fill(d.digest, 9);
  d.total_len = 123456;
  fill(d.rollback_digest, 40);
  uint8_t b[kDesiredLen];
  encode_desired(d, b);
  EXPECT_EQ(std::memcmp(b, "TFDS\x01\x01\x00\x00\x04\x03\x02\x01", 12), 0);
  EXPECT_EQ(b[12], digest_of(9, 0));
  EXPECT_EQ(load_u32le(b + 44), 123456u);
  EXPECT_EQ(b[48], 12);
  EXPECT_EQ(b[52], digest_of(40, 0));
  DesiredState back;
  ASSERT_EQ(decode_desired(b, kDesiredLen, back), Status::Ok);
  EXPECT_EQ(back.desired_seq, d.desired_seq);
  EXPECT_EQ(back.flags, 1);
  EXPECT_EQ(std::memcmp(back.rollback_digest, d.rollback_digest, 32), 0);

  auto broken = [&](int off, uint8_t v) {
    uint8_t c[kDesiredLen];
    std::memcpy(c, b, kDesiredLen);
    c[off] = v;
    return decode_desired(c, kDesiredLen, back);
  };
  EXPECT_EQ(broken(0, 'X'), Status::MalformedMessage);
  EXPECT_EQ(broken(4, 2), Status::MalformedMessage);
  EXPECT_EQ(broken(5, 2), Status::MalformedMessage);
  EXPECT_EQ(broken(6, 1), Status::MalformedMessage);
  EXPECT_EQ(broken(48, 13), Status::MalformedMessage);
  EXPECT_EQ(broken(50, 1), Status::MalformedMessage);
  EXPECT_EQ(decode_desired(b, kDesiredLen - 1, back), Status::MalformedMessage);
  d.desired_seq = 0;
  encode_desired(d, b);
  EXPECT_EQ(decode_desired(b, kDesiredLen, back), Status::MalformedMessage);
  // A refused message leaves `out` as it was (the agent decodes straight into its latest desired state).
  uint8_t before[sizeof back];
  std::memcpy(before, &back, sizeof back);
  EXPECT_EQ(broken(5, 2), Status::MalformedMessage);
  EXPECT_EQ(broken(48, 13), Status::MalformedMessage);
  EXPECT_EQ(decode_desired(b, kDesiredLen, back), Status::MalformedMessage);
  EXPECT_EQ(std::memcmp(before, &back, sizeof back), 0);
}

TEST(Protocol, BlocksAndTheLastBlockSize) {
  EXPECT_EQ(block_count(1), 1u);
  EXPECT_EQ(block_count(4096), 1u);
  EXPECT_EQ(block_count(4097), 2u);
  EXPECT_EQ(block_data_len(4097, 0), 4096u);
  EXPECT_EQ(block_data_len(4097, 1), 1u);
  EXPECT_EQ(block_data_len(8192, 1), 4096u);
  EXPECT_EQ(block_data_len(8192, 2), 0u);

  std::vector<uint8_t> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 31);
  std::vector<uint8_t> msg(kBlockHeaderLen + data.size());
  ASSERT_EQ(encode_block(2, 2 * 4096 + 1000, data.data(), data.size(), msg.data(), msg.size()), msg.size());
  EXPECT_EQ(std::memcmp(msg.data(), "TFBK\x01\x0c\x00\x00\x02\x00\x00\x00", 12), 0);
  EXPECT_EQ(load_u32le(msg.data() + 12), 2u * 4096 + 1000);
  EXPECT_EQ(load_u32le(msg.data() + 16), crc32_ieee(data.data(), data.size()));
  BlockHeader h;
  const uint8_t* p = nullptr;
  size_t n = 0;
  ASSERT_EQ(decode_block(msg.data(), msg.size(), h, p, n), Status::Ok);
  EXPECT_EQ(n, 1000u);
  EXPECT_EQ(p, msg.data() + 20);
  msg[30] ^= 1;  // CRC
  EXPECT_EQ(decode_block(msg.data(), msg.size(), h, p, n), Status::MalformedMessage);
  msg[30] ^= 1;
  EXPECT_EQ(decode_block(msg.data(), msg.size() - 1, h, p, n), Status::MalformedMessage);  // length
  store_u32le(msg.data() + 8, 1);  // index 1 of this component must carry 4096 bytes
  EXPECT_EQ(decode_block(msg.data(), msg.size(), h, p, n), Status::MalformedMessage);
  store_u32le(msg.data() + 8, 3);  // past the end
  EXPECT_EQ(decode_block(msg.data(), msg.size(), h, p, n), Status::MalformedMessage);
  EXPECT_EQ(decode_block(msg.data(), 19, h, p, n), Status::MalformedMessage);
}

TEST(Protocol, StateReportAndPresenceLayout) {
  StateReport r;
  r.from_state = 2;
  r.to_state = 4;
  r.event = 3;
  r.epoch = 7;
  r.seq = 0x0A0B0C0D;
  r.reason = 96;
  r.desired_seq = 5;
  fill(r.target_digest, 1);
  fill(r.running_digest, 2);
  r.detail0 = 11;
  r.detail1 = 22;
  r.device_time = 1790000000;
  uint8_t b[kReportLen];
  encode_report(r, b);
  EXPECT_EQ(std::memcmp(b, "TFSR\x01\x02\x04\x03\x07\x00\x00\x00\x0d\x0c\x0b\x0a\x60\x00\x00\x00\x05", 21), 0);
  EXPECT_EQ(b[24], digest_of(1, 0));
  EXPECT_EQ(b[56], digest_of(2, 0));
  EXPECT_EQ(load_u32le(b + 88), 11u);
  EXPECT_EQ(load_u32le(b + 92), 22u);
  EXPECT_EQ(load_u64le(b + 96), 1790000000u);
  StateReport back;
  ASSERT_EQ(decode_report(b, kReportLen, back), Status::Ok);
  EXPECT_EQ(back.seq, r.seq);
  b[18] = 1;
  EXPECT_EQ(decode_report(b, kReportLen, back), Status::MalformedMessage);

  Presence p;
  p.status = 2;
  p.image_state = 2;
  p.epoch = 3;
  p.last_seq = 4;
  fill(p.running_digest, 5);
  std::strcpy(p.hardware_class, "esp32s3");
  p.bank_size = 65536;
  p.security_counter = 9;
  p.device_time = 42;
  uint8_t q[kPresenceLen];
  encode_presence(p, q);
  EXPECT_EQ(std::memcmp(q, "TFPR\x01\x02\x02\x00\x03\x00\x00\x00\x04\x00\x00\x00", 16), 0);
  EXPECT_EQ(q[16], digest_of(5, 0));
  EXPECT_EQ(std::memcmp(q + 48, "esp32s3\0\0", 9), 0);
  EXPECT_EQ(load_u32le(q + 80), 65536u);
  EXPECT_EQ(load_u32le(q + 84), 9u);
  EXPECT_EQ(load_u64le(q + 88), 42u);
  Presence pb;
  ASSERT_EQ(decode_presence(q, kPresenceLen, pb), Status::Ok);
  EXPECT_STREQ(pb.hardware_class, "esp32s3");
}

TEST(Protocol, ReasonCodesOfBundleVerdictsFollowTheErrorsTable) {
  EXPECT_EQ(reason_from_status(Status::BadMagic), Reason(1));
  EXPECT_EQ(reason_from_status(Status::WrongHardwareClass), Reason(14));
  EXPECT_EQ(reason_from_status(Status::CounterTooLow), Reason(17));
  EXPECT_EQ(reason_from_status(Status::HashMismatch), Reason::HashMismatch);
  EXPECT_EQ(reason_from_status(Status::BundleTooLarge), Reason::TooLarge);
  EXPECT_EQ(reason_from_status(Status::FlashNotErased), Reason::FlashError);
  EXPECT_EQ(reason_from_status(Status::Ok), Reason::None);
}

TEST(Protocol, DefaultPresenceIsZeroButImageStateOne) {
  const Presence p;
  EXPECT_EQ(p.status, 0);
  EXPECT_EQ(p.image_state, 1);
  EXPECT_EQ(p.epoch, 0u);
  EXPECT_EQ(p.last_seq, 0u);
  for (uint8_t b : p.running_digest) EXPECT_EQ(b, 0);
  for (char c : p.hardware_class) EXPECT_EQ(c, 0);
  EXPECT_EQ(p.bank_size, 0u);
  EXPECT_EQ(p.security_counter, 0u);
  EXPECT_EQ(p.device_time, 0u);
}
