// The agent's own persistent record (flash area Scratch): boot epoch, highest accepted desired_seq, the
// last trial attempt and the download bitmap that makes a download resume after a reboot. Two copies, one
// in each half of the area, each with a sequence number and a CRC-32; a store goes to the copy that does
// not hold the newest valid record (erase, then one write), so a power cut leaves the previous one.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/ports.h"
#include "tinyfleet/status.h"

// Largest number of 4096-byte blocks a bundle may have on this device (bitmap size = this / 8 bytes).
#ifndef TINYFLEET_MAX_BLOCKS
#define TINYFLEET_MAX_BLOCKS 2048
#endif

namespace tinyfleet {

constexpr size_t kBitmapBytes = (TINYFLEET_MAX_BLOCKS + 7) / 8;

enum class AttemptState : uint8_t {
  None = 0,
  TrialPending = 1,  // installed as trial, not yet confirmed
  Failed = 2,        // reverted: the same (desired_seq, digest) is not retried
};

struct ProgressRecord {
  uint32_t seq = 0;  // record sequence (which copy is newest)
  uint32_t epoch = 0;
  uint32_t highest_desired_seq = 0;
  AttemptState attempt = AttemptState::None;
  uint16_t attempt_reason = 0;
  bool attempt_reported = false;
  uint32_t attempt_detail0 = 0;  // the failure's report details, repeated after the reboot
  uint32_t attempt_detail1 = 0;  // a Failed attempt's revert was reported after the reboot
  uint32_t attempt_desired_seq = 0;
  uint8_t attempt_digest[32] = {};
  bool downloading = false;
  uint8_t download_bank = 0;
  uint32_t download_desired_seq = 0;
  uint8_t download_digest[32] = {};
  uint32_t download_blocks = 0;
  uint8_t bitmap[kBitmapBytes] = {};
};

constexpr size_t kProgressRecordLen = 104 + kBitmapBytes + 4;

void encode_progress(const ProgressRecord& rec, uint8_t out[kProgressRecordLen]);
Status decode_progress(const uint8_t* in, size_t len, ProgressRecord& out);  // Ok or NotFound

class ProgressStore {
 public:
  explicit ProgressStore(Flash& flash) : flash_(flash) {}
  // False when the platform has no Scratch area large enough for two copies (nothing persists).
  bool available() const;
  // Newest valid copy, or NotFound (fresh device: start from defaults).
  Status load(ProgressRecord& out);
  // Writes rec with seq = newest + 1 into the other copy; rec.seq is updated.
  Status store(ProgressRecord& rec);

 private:
  uint32_t copy_offset(int copy) const;
  uint32_t copy_span() const;
  // buf: kProgressRecordLen bytes of the caller's stack (the record is encoded there only while it is read
  // or written, so it costs no static RAM).
  Status peek_copy(int copy, uint8_t* buf, bool& valid, uint32_t& seq);
  Status newest_copy(uint8_t* buf, int& newest, uint32_t& newest_seq);
  Flash& flash_;
};

}  // namespace tinyfleet
