// The model half of the health check against vectors in flash: exact outputs, latency, RAM, and a
// malformed vectors component or a failing model count as failures (never as a pass).
#include <gtest/gtest.h>

#include "agent_harness.h"
#include "tinyfleet/health.h"

using namespace tinyfleet;

namespace {

struct Bank {
  agenttest::Device dev;
  BundleInfo info;
  explicit Bank(const agenttest::Bytes& hv) {
    auto s = agenttest::spec(3);
    s.payloads[4] = hv;
    auto bundle = dev.make_bundle(s);
    dev.provision(bundle);
    parse_prefix(bundle.data(), bundle.size(), info);
  }
  HealthOutcome run() {
    HealthChecker h;
    return h.run(dev.flash, FlashArea::Bank0, info, dev.inference);
  }
};

struct FailingInference final : Inference {
  Status run(const uint8_t*, size_t, uint8_t*, size_t, InferenceResult&) override { return Status::InvalidState; }
};

}  // namespace

TEST(Health, PassesWhenEveryVectorMatches) {
  Bank b(agenttest::health_vectors(3, 16));
  HealthOutcome r = b.run();
  EXPECT_TRUE(r.passed());
  EXPECT_EQ(r.vectors, 16u);
  EXPECT_EQ(r.max_latency_us, 1200u);
  EXPECT_EQ(r.max_arena_bytes, 12000u);
}

TEST(Health, OneBitOffIsAFailureNamingTheVector) {
  Bank b(agenttest::health_vectors(3, 16));
  b.dev.inference.flip_output_at = 9;
  HealthOutcome r = b.run();
  EXPECT_EQ(r.reason, Reason::HealthOutputMismatch);
  EXPECT_EQ(r.detail0, 9u);
}

TEST(Health, LatencyAndArenaLimitsAreInclusive) {
  Bank b(agenttest::health_vectors(3));
  b.dev.inference.latency_us = 50000;
  b.dev.inference.arena = 20000;
  EXPECT_TRUE(b.run().passed());
  b.dev.inference.latency_us = 50001;
  EXPECT_EQ(b.run().reason, Reason::HealthLatency);
  b.dev.inference.latency_us = 1;
  b.dev.inference.arena = 20001;
  EXPECT_EQ(b.run().reason, Reason::HealthRam);
}

TEST(Health, MalformedVectorsOrFailingModelNeverPass) {
  auto hv = agenttest::health_vectors(3);
  hv[8] = 9;  // input_bytes 9 does not match the manifest's 8-byte input
  EXPECT_EQ(Bank(hv).run().reason, Reason::HealthInference);
  hv = agenttest::health_vectors(3);
  hv[0] = 'X';
  EXPECT_EQ(Bank(hv).run().reason, Reason::HealthInference);
  hv = agenttest::health_vectors(3);
  hv.push_back(0);  // length does not match the count
  EXPECT_EQ(Bank(hv).run().reason, Reason::HealthInference);
  Bank ok(agenttest::health_vectors(3));
  FailingInference failing;
  HealthChecker h;
  EXPECT_EQ(h.run(ok.dev.flash, FlashArea::Bank0, ok.info, failing).reason, Reason::HealthInference);
}

TEST(Health, UnknownFeatureExtractorFailsBeforeTheModelRuns) {
  for (const char* version : {"vib-window-v2", "VIB-WINDOW-V1", "vib-window-v1x", "v"}) {
    agenttest::Device dev;
    auto s = agenttest::spec(3);
    s.feature_extractor = version;
    auto bundle = dev.make_bundle(s);
    dev.provision(bundle);
    BundleInfo info;
    ASSERT_EQ(parse_prefix(bundle.data(), bundle.size(), info), Status::Ok) << version;
    EXPECT_EQ(health_contract(info).feature_extractor, FeatureExtractorId::Unknown) << version;
    HealthChecker h;
    const HealthOutcome r = h.run(dev.flash, FlashArea::Bank0, info, dev.inference);
    EXPECT_EQ(r.reason, Reason::HealthFeatureExtractor) << version;
    EXPECT_EQ(r.vectors, 0u) << version;
    EXPECT_EQ(dev.inference.calls, 0) << version;  // the model never ran
  }
  Bank known(agenttest::health_vectors(3));
  EXPECT_EQ(health_contract(known.info).feature_extractor, FeatureExtractorId::VibWindowV1);
}
