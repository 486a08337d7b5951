// The inference path alone: the running model's calibration and thresholds as loaded at boot (a record
// that does not parse leaves the defaults), samples calibrated into the application's ring and counted in
// the telemetry window, decisions counted, and the window closed when its period passes.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "support/component_payloads.h"
#include "tinyfleet/inference_path.h"

using namespace tinyfleet;

namespace {

struct Path {
  InferencePath p;
  int16_t ring[64] = {};
  Path() {
    std::vector<ChannelCalibration> chans(2);
    chans[0].offset = 10;
    chans[1].gain_q16 = 2 << 16;
    const auto cal = tftest::calibration_payload(chans, 100);
    const auto th = tftest::thresholds_payload({{10, false}, {0, true}});
    p.load_calibration(cal.data(), cal.size());
    p.load_thresholds(th.data(), th.size());
    p.attach_sample_ring(ring, 64);
    p.start(1790000000, 5000);
  }
};

}  // namespace

TEST(InferencePath, CalibratesSamplesIntoTheRingAndTheWindow) {
  Path t;
  ASSERT_EQ(t.p.calibration().channel_count, 2);
  const int16_t raw[] = {110, 7, 20, -3, 30, 100};  // three frames of two channels
  t.p.on_samples(raw, 3);
  int16_t latest[4];
  ASSERT_TRUE(t.p.latest_frames(latest, 2));
  EXPECT_EQ(latest[0], 10);  // 20 - 10
  EXPECT_EQ(latest[1], -6);  // -3 * 2
  EXPECT_EQ(latest[2], 20);
  EXPECT_EQ(latest[3], 200);
  EXPECT_FALSE(t.p.latest_frames(latest, 33));  // the ring holds 32 frames
  EXPECT_EQ(t.p.drift().sample_count(), 3u);
  EXPECT_EQ(t.p.drift().channel_count(), 2);
}

TEST(InferencePath, DecidesWithTheLoadedThresholdsAndCountsTheDecision) {
  Path t;
  const int8_t out[] = {5, 3};  // class 0 below its 10, class 1 (alarm) at or above 0
  Decision d = t.p.on_inference(reinterpret_cast<const uint8_t*>(out), 2, 1500);
  EXPECT_EQ(d.winner, 1);
  EXPECT_TRUE(d.alarm);
  EXPECT_EQ(t.p.drift().inference_count(), 1u);
  t.p.set_output_dtype(2);  // uint8 outputs: 5 and 3 are far below zero on the int8 scale
  d = t.p.on_inference(reinterpret_cast<const uint8_t*>(out), 2, 1500);
  EXPECT_EQ(d.winner, -1);
}

TEST(InferencePath, ARecordThatDoesNotParseLeavesTheDefaults) {
  Path t;
  const uint8_t junk[] = {'T', 'F', 'C', 'A', 9, 9};
  t.p.load_calibration(junk, sizeof junk);
  t.p.load_thresholds(junk, sizeof junk);
  EXPECT_EQ(t.p.calibration().channel_count, 0);
  const int16_t raw[] = {1, 2};
  t.p.on_samples(raw, 1);  // no channels: nothing is counted
  EXPECT_EQ(t.p.drift().sample_count(), 0u);
  t.p.forget_model();
  EXPECT_EQ(t.p.calibration().channel_count, 0);
}

TEST(InferencePath, TheWindowClosesWhenItsPeriodHasPassed) {
  Path t;
  const int16_t raw[] = {110, 7};
  t.p.on_samples(raw, 1);
  uint8_t digest[32];
  std::memset(digest, 0xD1, 32);
  uint8_t out[kMaxTelemetryLen];
  EXPECT_EQ(t.p.close_window(5000 + 59999, 60, 4, digest, out), 0u);
  const size_t len = t.p.close_window(5000 + 60000, 60, 4, digest, out);
  EXPECT_EQ(len, kTelemetryHeaderLen + 2 * kTelemetryChannelLen);
  t.p.next_window(1790000060, 65000);
  EXPECT_EQ(t.p.drift().sample_count(), 0u);  // a fresh window
  EXPECT_EQ(t.p.close_window(65000 + 1000, 60, 4, digest, out), 0u);
  EXPECT_EQ(t.p.close_window(65000 + 60000, 60, 4, digest, out), len);
}
