// Fixed-point calibration, the thresholds decision rule, and the sample ring over caller storage.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tinyfleet/bytes.h"
#include "support/component_payloads.h"
#include "tinyfleet/calibration.h"

using namespace tinyfleet;

using tftest::calibration_payload;
using tftest::thresholds_payload;

TEST(Calibration, FixedPointMatchesTheSpecFormula) {
  ChannelCalibration c;
  c.offset = 100;
  c.gain_q16 = 3 * 65536 / 2;  // 1.5
  EXPECT_EQ(calibrate(c, 100), 0);
  EXPECT_EQ(calibrate(c, 110), 15);
  EXPECT_EQ(calibrate(c, 99), -2);     // -1.5 floors to -2: arithmetic shift, not truncation
  EXPECT_EQ(calibrate(c, 30000), 32767);  // clamp high
  EXPECT_EQ(calibrate(c, -30000), -32768);
  c.offset = -2000000000;  // 64-bit intermediate: no overflow
  c.gain_q16 = 0x7FFFFFFF;
  EXPECT_EQ(calibrate(c, 32767), 32767);
  // Exhaustive over int16 for one realistic channel against the formula in 64-bit.
  c.offset = -37;
  c.gain_q16 = 70123;
  for (int32_t raw = -32768; raw <= 32767; ++raw) {
    int64_t v = (static_cast<int64_t>(raw) + 37) * 70123;
    int64_t q = v >= 0 ? v / 65536 : -((-v + 65535) / 65536);
    q = q > 32767 ? 32767 : (q < -32768 ? -32768 : q);
    ASSERT_EQ(calibrate(c, raw), q) << raw;
  }
}

TEST(Calibration, ParsesThePayloadAndRejectsBadOnes) {
  std::vector<ChannelCalibration> chans(3);
  chans[1].offset = -5;
  chans[1].gain_q16 = 12345;
  chans[2].baseline_mean_q8 = -700;
  chans[2].baseline_std_q8 = 900;
  auto p = calibration_payload(chans, 1600);
  Calibration cal;
  ASSERT_EQ(parse_calibration(p.data(), p.size(), cal), Status::Ok);
  EXPECT_EQ(cal.channel_count, 3);
  EXPECT_EQ(cal.sample_rate_hz, 1600u);
  EXPECT_EQ(cal.channels[1].offset, -5);
  EXPECT_EQ(cal.channels[1].gain_q16, 12345);
  EXPECT_EQ(cal.channels[2].baseline_mean_q8, -700);
  EXPECT_EQ(cal.channels[2].baseline_std_q8, 900u);

  auto bad = p;
  bad.pop_back();
  EXPECT_EQ(parse_calibration(bad.data(), bad.size(), cal), Status::MalformedMessage);
  bad = p;
  bad[0] = 'X';
  EXPECT_EQ(parse_calibration(bad.data(), bad.size(), cal), Status::MalformedMessage);
  chans[0].gain_q16 = 0;
  bad = calibration_payload(chans, 1);
  EXPECT_EQ(parse_calibration(bad.data(), bad.size(), cal), Status::MalformedMessage);
  std::vector<ChannelCalibration> seventeen(17);
  bad = calibration_payload(seventeen, 1);
  EXPECT_EQ(parse_calibration(bad.data(), bad.size(), cal), Status::MalformedMessage);
}

TEST(Thresholds, DecisionRule) {
  auto p = thresholds_payload({{10, false}, {0, true}, {50, true}});
  Thresholds t;
  ASSERT_EQ(parse_thresholds(p.data(), p.size(), t), Status::Ok);
  auto run = [&](std::vector<int8_t> out) {
    return decide(t, reinterpret_cast<const uint8_t*>(out.data()), out.size(), 1);
  };
  Decision d = run({20, 30, 40});  // class 2 below its 50: class 1 (30 >= 0) wins over class 0 (20)
  EXPECT_EQ(d.winner, 1);
  EXPECT_TRUE(d.alarm);
  EXPECT_EQ(d.confidence, 40 + 128);
  d = run({20, 20, -1});  // tie: lowest index
  EXPECT_EQ(d.winner, 0);
  EXPECT_FALSE(d.alarm);
  d = run({5, -1, 49});  // nobody qualifies
  EXPECT_EQ(d.winner, -1);
  EXPECT_FALSE(d.alarm);
  EXPECT_EQ(d.confidence, 49 + 128);
  // uint8 outputs map to the int8 scale.
  std::vector<uint8_t> u = {128 + 20, 128 + 30, 128 + 60};
  d = decide(t, u.data(), u.size(), 2);
  EXPECT_EQ(d.winner, 2);
  EXPECT_EQ(d.confidence, 188);

  auto bad = thresholds_payload({{200, false}});
  EXPECT_EQ(parse_thresholds(bad.data(), bad.size(), t), Status::MalformedMessage);
  bad = thresholds_payload({{0, false}});
  bad[8 + 2] = 2;  // unknown flag bit
  EXPECT_EQ(parse_thresholds(bad.data(), bad.size(), t), Status::MalformedMessage);
}

TEST(SampleRing, KeepsTheLatestCalibratedFramesInOrder) {
  Calibration cal;
  cal.channel_count = 3;
  for (int c = 0; c < 3; ++c) {
    cal.channels[c].offset = c;
    cal.channels[c].gain_q16 = 2 << 16;
  }
  std::vector<int16_t> storage(2048);
  SampleRing ring;
  ring.attach(storage.data(), static_cast<uint32_t>(storage.size()));
  ASSERT_EQ(ring.reset(cal), Status::Ok);
  const uint32_t cap = ring.capacity_frames();
  EXPECT_EQ(cap, 2048u / 3u);
  std::vector<int16_t> out(3 * 4);
  EXPECT_FALSE(ring.latest(out.data(), 1));
  for (uint32_t f = 0; f < cap + 10; ++f) {
    int16_t raw[3] = {static_cast<int16_t>(f), static_cast<int16_t>(f + 1), static_cast<int16_t>(f + 2)};
    ring.push(raw);
  }
  EXPECT_EQ(ring.frames(), cap);
  ASSERT_TRUE(ring.latest(out.data(), 4));
  for (uint32_t i = 0; i < 4; ++i) {
    uint32_t f = cap + 6 + i;
    for (int c = 0; c < 3; ++c) EXPECT_EQ(out[i * 3 + c], static_cast<int16_t>(2 * f)) << i << c;  // (raw - offset) * 2 = 2f
  }
  EXPECT_FALSE(ring.latest(out.data(), cap + 1));
  cal.channel_count = 0;
  EXPECT_EQ(ring.reset(cal), Status::InvalidArgument);
}

TEST(SampleRing, WithoutStorageStillCalibratesButHoldsNothing) {
  Calibration cal;
  cal.channel_count = 2;
  cal.channels[0].offset = 10;
  cal.channels[1].gain_q16 = 3 << 16;
  SampleRing ring;
  ASSERT_EQ(ring.reset(cal), Status::Ok);
  EXPECT_EQ(ring.capacity_frames(), 0u);
  const int16_t raw[2] = {15, -4};
  int16_t out[2] = {0, 0};
  ring.push(raw, out);
  EXPECT_EQ(out[0], 5);
  EXPECT_EQ(out[1], -12);
  EXPECT_EQ(ring.frames(), 0u);
  EXPECT_FALSE(ring.latest(out, 1));
  EXPECT_TRUE(ring.latest(out, 0));
}
