#include "tinyfleet/report_queue.h"

#include <cstring>

namespace tinyfleet {

const ReportQueue::Entry& ReportQueue::push(uint32_t seq, const uint8_t report[kReportLen]) {
  Entry* slot = &entries_[0];  // the first free slot, else the oldest report
  for (Entry& e : entries_) {
    if (slot->seq != 0 && (e.seq == 0 || e.seq < slot->seq)) slot = &e;
  }
  slot->seq = seq;
  std::memcpy(slot->bytes, report, kRunningDigestAt);
  std::memcpy(slot->bytes + kRunningDigestAt, report + kAfterRunningDigest, kReportLen - kAfterRunningDigest);
  return *slot;
}

void ReportQueue::render(const Entry& e, const uint8_t running_digest[32], uint8_t out[kReportLen]) {
  std::memcpy(out, e.bytes, kRunningDigestAt);
  std::memcpy(out + kRunningDigestAt, running_digest, 32);
  std::memcpy(out + kAfterRunningDigest, e.bytes + kRunningDigestAt, kReportLen - kAfterRunningDigest);
}

const ReportQueue::Entry* ReportQueue::oldest_after(uint32_t seq) const {
  const Entry* next = nullptr;
  for (const Entry& e : entries_) {
    if (e.seq > seq && (next == nullptr || e.seq < next->seq)) next = &e;
  }
  return next;
}

void ReportQueue::acknowledge(uint32_t seq) {
  for (Entry& e : entries_) {
    if (e.seq != 0 && e.seq == seq) e.seq = 0;
  }
}

uint32_t ReportQueue::pending() const {
  uint32_t n = 0;
  for (const Entry& e : entries_) n += e.seq != 0 ? 1 : 0;
  return n;
}

}  // namespace tinyfleet
