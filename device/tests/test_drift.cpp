// Drift metadata in fixed point: channel mean/variance against an independent 128-bit computation and
// floating point, the latency buckets and p99, the confidence histogram, temperature, the TFTM layout,
// and the agent publishing a window of calibrated statistics (never raw samples).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <new>
#include <random>
#include <utility>
#include <vector>

#include "agent_harness.h"
#include "tinyfleet/bytes.h"
#include "tinyfleet/drift.h"

using namespace tinyfleet;

TEST(Drift, ChannelMeanAndVarianceInQ8) {
  DriftWindow w;
  w.reset(2, 1000);
  std::mt19937 rng(7);
  std::normal_distribution<double> n0(-1234.5, 300.0), n1(20000.0, 9000.0);
  const int n = 50000;
  __int128 s0 = 0, q0 = 0;
  double ds = 0, dq = 0;
  for (int i = 0; i < n; ++i) {
    int16_t x[2] = {static_cast<int16_t>(std::lround(n0(rng))),
                    static_cast<int16_t>(std::clamp(std::lround(n1(rng)), -32768L, 32767L))};
    w.add_frame(x);
    s0 += x[0];
    q0 += static_cast<__int128>(x[0]) * x[0];
    ds += x[0];
    dq += static_cast<double>(x[0]) * x[0];
  }
  ChannelStats c0 = w.channel(0);
  int64_t mean_q8 = static_cast<int64_t>((s0 * 256) / n);
  uint64_t var_q8 = static_cast<uint64_t>((q0 * 256) / n - static_cast<__int128>(mean_q8) * mean_q8 / 256);
  EXPECT_EQ(c0.mean_q8, mean_q8);
  EXPECT_EQ(c0.var_q8, var_q8);
  const double mean = ds / n, var = dq / n - mean * mean;
  EXPECT_NEAR(c0.mean_q8 / 256.0, mean, 1.0 / 256);
  EXPECT_NEAR(c0.var_q8 / 256.0, var, var * 1e-4 + 1);
  EXPECT_NEAR(std::sqrt(c0.var_q8 / 256.0), 300.0, 5.0);
  EXPECT_EQ(w.sample_count(), static_cast<uint32_t>(n));
  EXPECT_EQ(w.channel(1).var_q8 > 0, true);

  DriftWindow constant;
  constant.reset(1, 0);
  int16_t v = -77;
  for (int i = 0; i < 10; ++i) constant.add_frame(&v);
  EXPECT_EQ(constant.channel(0).mean_q8, -77 * 256);
  EXPECT_EQ(constant.channel(0).var_q8, 0u);
  DriftWindow empty;
  empty.reset(1, 0);
  EXPECT_EQ(empty.channel(0).mean_q8, 0);
  EXPECT_EQ(empty.channel(0).var_q8, 0u);
}

TEST(Drift, LatencyBucketsCoverEveryValueWithinOneEighth) {
  EXPECT_EQ(latency_bucket(0), 0u);
  EXPECT_EQ(latency_bucket(15), 15u);
  EXPECT_EQ(latency_bucket(16), 16u);
  EXPECT_EQ(latency_bucket((1u << 24) - 1), kLatencyBuckets - 1);
  EXPECT_EQ(latency_bucket(0xFFFFFFFFu), kLatencyBuckets - 1);
  uint32_t prev = 0;
  for (uint32_t v = 1; v < (1u << 24); v += (v < 4096 ? 1 : 97)) {
    uint32_t b = latency_bucket(v);
    ASSERT_GE(b, prev);
    prev = b;
    ASSERT_GE(latency_bucket_max(b), v);
    ASSERT_LE(latency_bucket_max(b), v + v / 8 + 1) << v;
    if (b > 0) {
      ASSERT_LT(latency_bucket_max(b - 1), v) << v;
    }
  }
}

TEST(Drift, P99HistogramTemperatureAndLayout) {
  DriftWindow w;
  w.reset(1, 1790000000);
  for (int i = 0; i < 990; ++i) w.add_inference(Decision{0, false, 200}, 1000);
  for (int i = 0; i < 10; ++i) w.add_inference(Decision{-1, false, 20}, 40000);
  // rank ceil(0.99 * 1000) = 990: still in the 1000 µs bucket.
  EXPECT_EQ(w.latency_p99_us(), latency_bucket_max(latency_bucket(1000)));
  w.add_inference(Decision{2, true, 255}, 40000);  // 1001 inferences: rank 991 reaches 40000
  EXPECT_EQ(w.latency_p99_us(), latency_bucket_max(latency_bucket(40000)));
  w.add_temperature(25 * 256);
  w.add_temperature(-3 * 256);
  w.add_temperature(30 * 256 + 1);
  int16_t x = 5;
  w.add_frame(&x);

  uint8_t digest[32];
  std::memset(digest, 0xAB, 32);
  uint8_t buf[kMaxTelemetryLen];
  ASSERT_EQ(w.encode(buf, 3, 9, 60, digest), 168u);
  EXPECT_EQ(std::memcmp(buf, "TFTM", 4), 0);
  EXPECT_EQ(buf[4], 1);
  EXPECT_EQ(buf[5], 1);
  EXPECT_EQ(buf[6], 16);
  EXPECT_EQ(load_u32le(buf + 8), 3u);
  EXPECT_EQ(load_u32le(buf + 12), 9u);
  EXPECT_EQ(load_u64le(buf + 16), 1790000000u);
  EXPECT_EQ(load_u32le(buf + 24), 60u);
  EXPECT_EQ(load_u32le(buf + 28), 1u);
  EXPECT_EQ(load_u32le(buf + 32), 1001u);
  EXPECT_EQ(load_u32le(buf + 36), 1u);   // alarms
  EXPECT_EQ(load_u32le(buf + 40), 10u);  // uncertain
  EXPECT_EQ(load_u32le(buf + 48), 40000u);
  EXPECT_EQ(static_cast<int16_t>(load_u16le(buf + 52)), -3 * 256);
  EXPECT_EQ(static_cast<int16_t>(load_u16le(buf + 54)), 30 * 256 + 1);
  EXPECT_EQ(static_cast<int16_t>(load_u16le(buf + 56)), (52 * 256 + 1) / 3);
  EXPECT_EQ(buf[60], 0xAB);
  EXPECT_EQ(load_u32le(buf + 92 + 4 * (200 >> 4)), 990u);
  EXPECT_EQ(load_u32le(buf + 92 + 4 * (20 >> 4)), 10u);
  EXPECT_EQ(load_u32le(buf + 92 + 4 * 15), 1u);
  EXPECT_EQ(static_cast<int32_t>(load_u32le(buf + 156)), 5 * 256);
  EXPECT_EQ(load_u64le(buf + 160), 0u);

  DriftWindow none;
  none.reset(0, 0);
  ASSERT_EQ(none.encode(buf, 1, 1, 0, digest), 156u);
  EXPECT_EQ(static_cast<int16_t>(load_u16le(buf + 52)), -32768);
  EXPECT_EQ(load_u32le(buf + 44), 0u);
}

TEST(Drift, AgentPublishesCalibratedStatisticsNotSamples) {
  agenttest::Broker broker;
  agenttest::Device dev;
  dev.broker = &broker;
  auto s = agenttest::spec(1);
  // A real calibration: 2 channels, offset 100 and gain 0.5; thresholds: 4 classes, class 3 alarms.
  std::vector<uint8_t> cal(12 + 32, 0);
  std::memcpy(cal.data(), "TFCA", 4);
  store_u16le(cal.data() + 4, 1);
  store_u16le(cal.data() + 6, 2);
  store_u32le(cal.data() + 8, 100);
  for (int c = 0; c < 2; ++c) {
    store_u32le(cal.data() + 12 + 16 * c, 100);
    store_u32le(cal.data() + 16 + 16 * c, 1 << 15);
  }
  std::vector<uint8_t> th(8 + 80, 0);
  std::memcpy(th.data(), "TFTH", 4);
  store_u16le(th.data() + 4, 1);
  store_u16le(th.data() + 6, 4);
  th[8 + 60 + 2] = 1;
  s.payloads[2] = th;
  s.payloads[3] = cal;
  dev.provision(dev.make_bundle(s));
  dev.cfg.telemetry_period_s = 10;
  dev.boot();
  dev.connect();
  ASSERT_EQ(dev.agent->calibration().channel_count, 2);

  std::vector<int16_t> raw;
  for (int f = 0; f < 1000; ++f) {
    raw.push_back(static_cast<int16_t>(100 + 2 * (f % 10)));  // calibrated 0..9
    raw.push_back(static_cast<int16_t>(-900));                // calibrated -500
  }
  dev.agent->on_samples(raw.data(), 1000);
  int16_t last[4];
  ASSERT_TRUE(dev.agent->latest_frames(last, 2));
  EXPECT_EQ(last[0], 8);
  EXPECT_EQ(last[1], -500);
  EXPECT_EQ(last[2], 9);
  int8_t out[4] = {-5, 10, 3, 90};
  Decision d = dev.agent->on_inference(reinterpret_cast<uint8_t*>(out), 4, 2500);
  EXPECT_EQ(d.winner, 3);
  EXPECT_TRUE(d.alarm);
  dev.agent->on_temperature(41 * 256);

  dev.tick(9999);
  EXPECT_TRUE(broker.telemetry.empty());
  dev.tick(1);
  ASSERT_EQ(broker.telemetry.size(), 1u);
  const auto& t = broker.telemetry[0];
  ASSERT_EQ(t.size(), 156u + 24u);
  EXPECT_EQ(load_u32le(t.data() + 12), 1u);  // window_seq
  EXPECT_EQ(load_u32le(t.data() + 24), 10u);
  EXPECT_EQ(load_u32le(t.data() + 28), 1000u);
  EXPECT_EQ(load_u32le(t.data() + 32), 1u);
  EXPECT_EQ(load_u32le(t.data() + 36), 1u);
  EXPECT_EQ(static_cast<int32_t>(load_u32le(t.data() + 156)), 1152);  // mean 4.5 in Q8
  EXPECT_EQ(load_u64le(t.data() + 160), 2112u);                       // var 8.25 in Q8
  EXPECT_EQ(static_cast<int32_t>(load_u32le(t.data() + 168)), -500 * 256);
  EXPECT_EQ(load_u64le(t.data() + 172), 0u);
  EXPECT_EQ(std::memcmp(t.data() + 60, dev.agent->running_digest(), 32), 0);
  dev.tick(10000);  // next window: empty, seq 2
  ASSERT_EQ(broker.telemetry.size(), 2u);
  EXPECT_EQ(load_u32le(broker.telemetry[1].data() + 12), 2u);
  EXPECT_EQ(load_u32le(broker.telemetry[1].data() + 28), 0u);
}

// reset() zeroes the whole window with one memset: that is its members' defaults only while they are all zero.
TEST(Drift, DefaultWindowIsAllZeroBytes) {
  alignas(DriftWindow) unsigned char built[sizeof(DriftWindow)] = {};
  new (built) DriftWindow();
  const unsigned char zero[sizeof(DriftWindow)] = {};
  EXPECT_EQ(std::memcmp(built, zero, sizeof zero), 0);
}

// What an exact (uint32) histogram gives: the largest value of the bucket holding the ceil(0.99 n)-th latency.
static uint32_t exact_p99(const std::vector<std::pair<uint32_t, uint32_t>>& latency_counts) {
  std::vector<uint64_t> hist(kLatencyBuckets, 0);
  uint64_t n = 0;
  for (const auto& lc : latency_counts) {
    hist[latency_bucket(lc.first)] += lc.second;
    n += lc.second;
  }
  if (n == 0) return 0;
  const uint64_t rank = (n * 99 + 99) / 100;
  uint64_t seen = 0;
  for (uint32_t b = 0; b < kLatencyBuckets; ++b) {
    seen += hist[b];
    if (seen >= rank) return latency_bucket_max(b);
  }
  return latency_bucket_max(kLatencyBuckets - 1);
}

// The histogram is uint16 and saturates: 200,000 inferences at 1000 µs and a tail at 40000 µs just over and
// just under 1%, the tail first, last or spread through the window: p99 as an exact histogram gives it.
TEST(Drift, SaturatedLatencyBucketsKeepP99Exact) {
  const uint32_t bulk = 200000;
  const uint32_t over = (bulk + 98) / 99 + 5;  // tail / (bulk + tail) just over 1%
  const uint32_t under = bulk / 99 - 20;       // just under 1%
  for (uint32_t tail : {over, under}) {
    for (int order = 0; order < 3; ++order) {  // tail first, tail last, spread
      DriftWindow w;
      w.reset(1, 0);
      const uint32_t n = bulk + tail;
      for (uint32_t i = 0; i < n; ++i) {
        bool slow = false;
        if (order == 0) slow = i < tail;
        if (order == 1) slow = i >= bulk;
        if (order == 2) slow = (static_cast<uint64_t>(i) + 1) * tail / n > static_cast<uint64_t>(i) * tail / n;
        w.add_inference(Decision{0, false, 200}, slow ? 40000 : 1000);
      }
      const uint32_t expected = exact_p99({{1000, bulk}, {40000, tail}});
      EXPECT_EQ(w.latency_p99_us(), expected) << "tail " << tail << " order " << order;
      EXPECT_EQ(w.inference_count(), n);
      uint8_t digest[32] = {};
      uint8_t buf[kMaxTelemetryLen];
      w.encode(buf, 1, 1, 60, digest);
      EXPECT_EQ(load_u32le(buf + 32), n);  // inference_count on the wire stays exact
      EXPECT_EQ(load_u32le(buf + 44), expected);
      EXPECT_EQ(load_u32le(buf + 48), 40000u);  // latency_max stays exact
    }
  }
  EXPECT_EQ(exact_p99({{1000, bulk}, {40000, over}}), latency_bucket_max(latency_bucket(40000)));
  EXPECT_EQ(exact_p99({{1000, bulk}, {40000, under}}), latency_bucket_max(latency_bucket(1000)));
}
