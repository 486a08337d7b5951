// The download session alone, over a hand-made table: block numbering across components, the bitmap, the
// window of subscriptions, which block messages are wanted, wiped ranges, hash retries and checkpoints.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <utility>

#include "tinyfleet/download_session.h"
#include "tinyfleet/protocol.h"

using namespace tinyfleet;

namespace {

// Three components: 2.5 blocks, 1 block, 3 blocks (7 blocks in all), one after the other from offset 512.
void three_components(BundleInfo& info) {
  const uint32_t lengths[] = {2 * kBlockSize + kBlockSize / 2, kBlockSize, 3 * kBlockSize};
  uint32_t offset = 512;
  info.component_count = 3;
  for (uint8_t c = 0; c < 3; ++c) {
    info.components[c].offset = offset;
    info.components[c].length = lengths[c];
    std::memset(info.components[c].sha256, 0x10 + c, 32);
    offset += lengths[c];
  }
}

struct Session {
  DownloadSession s;
  uint8_t bitmap[kBitmapBytes] = {};
  Session() {
    three_components(s.info());
    EXPECT_TRUE(s.plan());
  }
};

}  // namespace

TEST(DownloadSession, NumbersBlocksAcrossComponentsAndCountsThem) {
  Session d;
  EXPECT_EQ(d.s.total_blocks(), 7u);
  EXPECT_EQ(d.s.blocks_present(d.bitmap), 0u);
  d.s.set_block(d.bitmap, 1, 0, true);  // bit 3
  EXPECT_EQ(d.bitmap[0], 1u << 3);
  EXPECT_TRUE(d.s.component_complete(d.bitmap, 1));
  EXPECT_FALSE(d.s.component_complete(d.bitmap, 0));
  d.s.set_component(d.bitmap, 2, true);
  EXPECT_EQ(d.s.blocks_present(d.bitmap), 4u);
  d.s.set_component(d.bitmap, 2, false);
  d.s.set_block(d.bitmap, 1, 0, false);
  EXPECT_EQ(d.s.blocks_present(d.bitmap), 0u);

  DownloadSession too_many;
  too_many.info().component_count = 1;
  too_many.info().components[0].length = (TINYFLEET_MAX_BLOCKS + 1) * kBlockSize;
  EXPECT_FALSE(too_many.plan());
}

TEST(DownloadSession, WantsOnlyMissingBlocksOfItsOwnComponents) {
  Session d;
  uint8_t sha[32];
  std::memset(sha, 0x12, 32);  // component 2
  EXPECT_EQ(d.s.wanted(d.bitmap, sha, 2), 2);
  EXPECT_EQ(d.s.wanted(d.bitmap, sha, 3), -1);  // past its last block
  d.s.set_block(d.bitmap, 2, 2, true);
  EXPECT_EQ(d.s.wanted(d.bitmap, sha, 2), -1);  // a duplicate
  std::memset(sha, 0x77, 32);
  EXPECT_EQ(d.s.wanted(d.bitmap, sha, 0), -1);  // not ours
}

TEST(DownloadSession, TheWindowAsksForEachMissingBlockOnceInOrder) {
  Session d;
  d.s.set_block(d.bitmap, 0, 1, true);
  std::vector<std::pair<int, uint32_t>> asked;
  while (const DownloadSession::Slot* slot = d.s.claim(d.bitmap)) asked.emplace_back(slot->component, slot->block);
  ASSERT_EQ(asked.size(), static_cast<size_t>(TINYFLEET_BLOCK_WINDOW));
  EXPECT_EQ(asked[0], std::make_pair(0, 0u));
  EXPECT_EQ(asked[1], std::make_pair(0, 2u));  // block 1 is there
  EXPECT_EQ(asked[2], std::make_pair(1, 0u));
  EXPECT_EQ(asked[3], std::make_pair(2, 0u));
  // A block that arrives frees its slot: the next missing block takes it.
  DownloadSession::Slot* slot = d.s.in_flight(0, 2);
  ASSERT_NE(slot, nullptr);
  d.s.set_block(d.bitmap, 0, 2, true);
  slot->used = false;
  const DownloadSession::Slot* next = d.s.claim(d.bitmap);
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(std::make_pair(int(next->component), next->block), std::make_pair(2, 1u));
  std::set<std::pair<int, uint32_t>> released;
  d.s.release_all([&](const DownloadSession::Slot& s) { released.emplace(s.component, s.block); });
  EXPECT_EQ(released.size(), static_cast<size_t>(TINYFLEET_BLOCK_WINDOW));
  EXPECT_EQ(d.s.in_flight(0, 0), nullptr);
}

TEST(DownloadSession, AWipedRangeClearsEveryBlockWithAByteInIt) {
  Session d;
  for (uint8_t c = 0; c < 3; ++c) d.s.set_component(d.bitmap, c, true);
  const BundleInfo& info = d.s.info();
  // The range from the last byte of component 0 to the first byte of component 2.
  d.s.clear_range(d.bitmap, info.components[0].end() - 1, info.components[2].offset + 1);
  EXPECT_TRUE(d.s.block_done(d.bitmap, 0, 1));
  EXPECT_FALSE(d.s.block_done(d.bitmap, 0, 2));  // the half block at the end of component 0
  EXPECT_FALSE(d.s.block_done(d.bitmap, 1, 0));
  EXPECT_FALSE(d.s.block_done(d.bitmap, 2, 0));
  EXPECT_TRUE(d.s.block_done(d.bitmap, 2, 1));
  EXPECT_EQ(d.s.blocks_present(d.bitmap), 4u);
}

TEST(DownloadSession, RetriesAComponentUpToTheLimitAgainAfterAPlan) {
  Session d;
  EXPECT_TRUE(d.s.retry(1, 2));
  EXPECT_TRUE(d.s.retry(1, 2));
  EXPECT_FALSE(d.s.retry(1, 2));
  EXPECT_TRUE(d.s.retry(0, 2));  // per component
  ASSERT_TRUE(d.s.plan());
  EXPECT_TRUE(d.s.retry(1, 2));
}

TEST(DownloadSession, CheckpointsEveryNBlocksAndAtEachCompleteComponent) {
  Session d;
  EXPECT_FALSE(d.s.block_written(3, false));
  EXPECT_FALSE(d.s.block_written(3, false));
  EXPECT_TRUE(d.s.block_written(3, false));
  EXPECT_TRUE(d.s.block_written(3, true));
  EXPECT_FALSE(d.s.block_written(3, false));
  EXPECT_EQ(d.s.blocks_fetched(), 5u);
  d.s.block_dropped();
  EXPECT_EQ(d.s.bad_blocks(), 1u);
}
