// extract_model_input (tinyfleet/model_input.h), the applications' ML path up to the model, on a booted agent:
// the running bundle's extractor (its signed feature_extractor_version) over the agent's calibrated-sample
// ring, read in place. The STM32L476 application's QEMU tests run it inside the application loop
// (device/targets/cortex-m/app/test_application.cpp).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "agent_harness.h"
#include "tinyfleet/bytes.h"
#include "tinyfleet/features.h"
#include "tinyfleet/model_input.h"

using namespace tinyfleet;

namespace {

constexpr size_t kInputBytes = features::kVibWindowFrames * features::kVibWindowChannels;  // 768

// A calibration record of 3 channels, offset 0 and gain 1: calibrated samples are the raw ones.
std::vector<uint8_t> identity_calibration() {
  std::vector<uint8_t> cal(12 + 16 * 3, 0);
  std::memcpy(cal.data(), "TFCA", 4);
  store_u16le(cal.data() + 4, 1);
  store_u16le(cal.data() + 6, 3);
  store_u32le(cal.data() + 8, 1000);
  for (int c = 0; c < 3; ++c) store_u32le(cal.data() + 16 + 16 * c, 1u << 16);
  return cal;
}

// A device booted on a provisioned bundle whose manifest names `extractor`, with 3-channel identity calibration.
void boot_device(agenttest::Device& dev, const char* extractor) {
  auto s = agenttest::spec(1);
  s.payloads[3] = identity_calibration();
  s.feature_extractor = extractor;
  dev.provision(dev.make_bundle(s));
  dev.boot();
}

// `frames` frames starting at frame `first`: channel c of frame k is a +-2,000 count sweep around c * 3,000.
void feed(Agent& agent, uint32_t first, uint32_t frames) {
  std::vector<int16_t> raw;
  for (uint32_t k = first; k < first + frames; ++k)
    for (int32_t c = 0; c < 3; ++c) raw.push_back(static_cast<int16_t>((k * 389 * (c + 2)) % 4001 - 2000 + 3000 * c));
  agent.on_samples(raw.data(), frames);
}

bool untouched(const std::vector<uint8_t>& out) {
  for (uint8_t b : out)
    if (b != 0xA5) return false;
  return true;
}

}  // namespace

TEST(ModelInput, TheRunningBundlesExtractorOverTheRingInPlace) {
  agenttest::Device dev;
  boot_device(dev, "vib-window-v1");
  Agent& agent = *dev.agent;
  ASSERT_EQ(agent.feature_extractor(), FeatureExtractorId::VibWindowV1);
  ASSERT_EQ(agent.calibration().channel_count, 3);

  std::vector<uint8_t> out(kInputBytes, 0xA5);
  EXPECT_EQ(extract_model_input(agent, out.data(), out.size()), Status::NotFound);  // empty ring
  feed(agent, 0, features::kVibWindowFrames - 1);
  EXPECT_EQ(extract_model_input(agent, out.data(), out.size()), Status::NotFound);  // one frame short
  EXPECT_TRUE(untouched(out));

  feed(agent, features::kVibWindowFrames - 1, 1);
  ASSERT_EQ(extract_model_input(agent, out.data(), out.size()), Status::Ok);
  RingWindow w;
  ASSERT_TRUE(agent.latest_window(features::kVibWindowFrames, w));
  EXPECT_LE(w.first + w.frames, w.capacity);  // contiguous in the ring's storage
  std::vector<int8_t> want(kInputBytes);
  ASSERT_EQ(features::extract(FeatureExtractorId::VibWindowV1, w, want.data(), want.size()), Status::Ok);
  EXPECT_EQ(std::memcmp(want.data(), out.data(), kInputBytes), 0);

  // The ring (2048 samples: 682 frames) wraps: the window is read in its two runs, and is still the latest.
  feed(agent, features::kVibWindowFrames, 600);
  ASSERT_EQ(extract_model_input(agent, out.data(), out.size()), Status::Ok);
  ASSERT_TRUE(agent.latest_window(features::kVibWindowFrames, w));
  EXPECT_GT(w.first + w.frames, w.capacity);
  ASSERT_EQ(features::extract(FeatureExtractorId::VibWindowV1, w, want.data(), want.size()), Status::Ok);
  EXPECT_EQ(std::memcmp(want.data(), out.data(), kInputBytes), 0);
  const std::vector<uint8_t> last = out;

  // A model input of another size is refused before the ring is read, and the buffer is left as it was.
  for (size_t len : {size_t{0}, kInputBytes - 1, kInputBytes + 1}) {
    std::vector<uint8_t> other(len + 1, 0xA5);
    EXPECT_EQ(extract_model_input(agent, other.data(), len), Status::InvalidArgument) << len;
    EXPECT_TRUE(untouched(other)) << len;
  }
  EXPECT_EQ(extract_model_input(agent, nullptr, kInputBytes), Status::InvalidArgument);
  EXPECT_EQ(out, last);
}

TEST(ModelInput, ABundleWhoseExtractorThisFirmwareLacksGetsNoInput) {
  agenttest::Device dev;
  boot_device(dev, "vib-window-v9");  // provisioned at the factory: no trial, so no health check refuses it
  Agent& agent = *dev.agent;
  ASSERT_EQ(agent.feature_extractor(), FeatureExtractorId::Unknown);
  feed(agent, 0, 300);
  std::vector<uint8_t> out(kInputBytes, 0xA5);
  EXPECT_EQ(extract_model_input(agent, out.data(), out.size()), Status::InvalidArgument);  // not NotFound
  EXPECT_TRUE(untouched(out));
}
