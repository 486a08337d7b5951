// The agent's RAM pinned to the byte for the default configuration (LP64 host build), as test_ram.cpp
// does for the storage objects: an Agent is one statically placed object holding every buffer.
#include <gtest/gtest.h>

#include <cstdio>

#include "tinyfleet/agent.h"

using namespace tinyfleet;

static_assert(TINYFLEET_MAX_BLOCKS == 2048 && TINYFLEET_BLOCK_WINDOW == 4 && TINYFLEET_REPORT_RING == 8 &&
                  TINYFLEET_MAX_TENSOR_BYTES == 1024 && TINYFLEET_PREFIX_BUFFER_SIZE == 4864,
              "pinned sizes are those of the default configuration");
static_assert(sizeof(void*) == 8, "pinned sizes are those of the LP64 host build");

TEST(AgentRam, ObjectsArePinnedToTheByte) {
  std::printf("[ram] Agent %zu: prefix buffer %u (also boot scratch and trial health tensors), sample ring %zu "
              "(its storage is the application's), "
              "update BundleInfo %zu, drift window %zu, progress record %zu, "
              "thresholds %zu, calibration %zu; standalone HealthChecker %zu, not in the agent\n",
              sizeof(Agent), static_cast<unsigned>(TINYFLEET_PREFIX_BUFFER_SIZE), sizeof(SampleRing),
              sizeof(BundleInfo), sizeof(DriftWindow),
              sizeof(ProgressRecord),
              sizeof(Thresholds), sizeof(Calibration), sizeof(HealthChecker));
  EXPECT_EQ(sizeof(Agent), 8936u);
  EXPECT_EQ(sizeof(Thresholds), 258u);
  EXPECT_EQ(sizeof(BootMetadata), 8u);  // the agent holds no boot verifier buffers
  EXPECT_EQ(sizeof(Action), 40u);
  EXPECT_EQ(sizeof(SampleRing), 40u);
  EXPECT_EQ(sizeof(DriftWindow), 736u);
  EXPECT_EQ(sizeof(HealthChecker), 3072u);
  EXPECT_EQ(sizeof(ProgressRecord), 364u);
  // The agent's parts (members of the Agent, counted in its size above).
  EXPECT_EQ(sizeof(DownloadSession), 856u);  // the update's BundleInfo, block numbering, window, counters
  EXPECT_EQ(sizeof(InferencePath), 1312u);   // calibration, thresholds, sample ring, drift window
  EXPECT_EQ(sizeof(ReportQueue), 612u);      // TINYFLEET_REPORT_RING reports and the boot's seq
  EXPECT_EQ(sizeof(RunningBundle), 104u);    // offsets and lengths, where the table starts, the health contract
}
