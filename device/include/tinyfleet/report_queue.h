// The state reports of one boot until the server acknowledges them (docs/device-protocol.md, "State report").
// A report is kept as encoded less its running digest: that is the running image's for every report of a
// boot, so it is put back when the report is sent. When the ring is full the oldest report is dropped (the
// server sees a gap in seq).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/protocol.h"

#ifndef TINYFLEET_REPORT_RING
#define TINYFLEET_REPORT_RING 8
#endif

namespace tinyfleet {

class ReportQueue {
 public:
  struct Entry {
    uint32_t seq = 0;                // 0: a free slot (a boot's reports count from 1)
    uint8_t bytes[kReportLen - 32];  // [0, 56) and [88, 104) of the report
  };

  // The seq of the next report of this boot (1, 2, ...); last_seq() is the latest one given out.
  uint32_t next_seq() { return ++seq_; }
  uint32_t last_seq() const { return seq_; }

  // Keeps an encoded report (its seq at bytes 16..19 is `seq`) in the first free slot, else the oldest's.
  const Entry& push(uint32_t seq, const uint8_t report[kReportLen]);
  // The report as sent: the entry with `running_digest` put back.
  static void render(const Entry& e, const uint8_t running_digest[32], uint8_t out[kReportLen]);
  // The oldest unacknowledged report after `seq` (0: the oldest of all), or nullptr.
  const Entry* oldest_after(uint32_t seq) const;
  void acknowledge(uint32_t seq);
  uint32_t pending() const;

 private:
  static constexpr size_t kRunningDigestAt = 56;
  static constexpr size_t kAfterRunningDigest = kRunningDigestAt + 32;

  uint32_t seq_ = 0;
  Entry entries_[TINYFLEET_REPORT_RING];
};

}  // namespace tinyfleet
