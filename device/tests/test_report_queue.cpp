// The report queue alone: seqs count from 1, a report is kept without its running digest and sent with
// it, acknowledged reports free their slot, re-sending goes oldest first, and a full ring drops the oldest.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tinyfleet/report_queue.h"

using namespace tinyfleet;

namespace {

void encoded(uint32_t seq, uint8_t out[kReportLen]) {
  StateReport r;
  r.seq = seq;
  r.epoch = 3;
  r.reason = 7;
  r.detail0 = seq * 10;
  std::memset(r.running_digest, 0xAB, 32);
  std::memset(r.target_digest, 0x5C, 32);
  encode_report(r, out);
}

}  // namespace

TEST(ReportQueue, KeepsAReportWithoutItsRunningDigestAndPutsItBack) {
  ReportQueue q;
  EXPECT_EQ(q.next_seq(), 1u);
  EXPECT_EQ(q.last_seq(), 1u);
  uint8_t report[kReportLen];
  encoded(1, report);
  const ReportQueue::Entry& e = q.push(1, report);
  EXPECT_EQ(e.seq, 1u);
  EXPECT_EQ(sizeof(e.bytes), kReportLen - 32);
  uint8_t digest[32];
  std::memset(digest, 0xAB, 32);
  uint8_t sent[kReportLen];
  ReportQueue::render(e, digest, sent);
  EXPECT_EQ(std::memcmp(sent, report, kReportLen), 0);
  StateReport back;
  ASSERT_EQ(decode_report(sent, kReportLen, back), Status::Ok);
  EXPECT_EQ(back.seq, 1u);
  EXPECT_EQ(back.detail0, 10u);
}

TEST(ReportQueue, AcknowledgedReportsLeaveAndTheRestGoOutOldestFirst) {
  ReportQueue q;
  uint8_t report[kReportLen];
  for (int i = 0; i < 5; ++i) {
    const uint32_t seq = q.next_seq();
    encoded(seq, report);
    q.push(seq, report);
  }
  EXPECT_EQ(q.pending(), 5u);
  q.acknowledge(2);
  q.acknowledge(4);
  q.acknowledge(99);  // not ours: nothing happens
  EXPECT_EQ(q.pending(), 3u);
  std::vector<uint32_t> order;
  for (const ReportQueue::Entry* e = q.oldest_after(0); e != nullptr; e = q.oldest_after(e->seq)) {
    order.push_back(e->seq);
  }
  EXPECT_EQ(order, (std::vector<uint32_t>{1, 3, 5}));
}

TEST(ReportQueue, AFullRingDropsTheOldestReport) {
  ReportQueue q;
  uint8_t report[kReportLen];
  for (uint32_t i = 0; i < TINYFLEET_REPORT_RING + 3; ++i) {
    const uint32_t seq = q.next_seq();
    encoded(seq, report);
    q.push(seq, report);
  }
  EXPECT_EQ(q.pending(), static_cast<uint32_t>(TINYFLEET_REPORT_RING));
  ASSERT_NE(q.oldest_after(0), nullptr);
  EXPECT_EQ(q.oldest_after(0)->seq, 4u);  // 1, 2 and 3 were dropped
  q.acknowledge(5);
  q.push(q.next_seq(), report);  // the freed slot is taken before the oldest is dropped
  EXPECT_EQ(q.oldest_after(0)->seq, 4u);
  EXPECT_EQ(q.pending(), static_cast<uint32_t>(TINYFLEET_REPORT_RING));
}
