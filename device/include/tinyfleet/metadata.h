// Dual-bank metadata: which bank boots, and in what state. Two copies (areas Meta0 and Meta1), each a
// fixed 112-byte record with a sequence number and a CRC-32. A new record always goes to the copy that
// does NOT hold the newest valid record (erase, then one write), so a power cut at any instant leaves
// the previous record intact; a torn or half-erased copy fails its CRC and is ignored.
//
// Record layout (little-endian):
//   0  u32 magic 'TFMD' (0x444D4654)   4  u8 format 1   5  u8 state   6  u8 confirmed_bank  7 u8 trial_bank
//   8  u32 seq   12 u8 boot_attempts   13..15 zero   16 u32 security_counter
//   20 image[0] 40 bytes, 60 image[1] 40 bytes: u32 total_len, u32 security_counter, 32 bytes prefix_sha256
//   100..107 zero   108 u32 crc32 of bytes [0, 108)
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/ports.h"
#include "tinyfleet/status.h"

namespace tinyfleet {

constexpr uint32_t kMetadataRecordLen = 112;

enum class BootState : uint8_t {
  Confirmed = 1,  // boot confirmed_bank
  Trial = 2,      // boot trial_bank, counting attempts; revert when they run out
  Reverted = 3,   // the trial in trial_bank failed; boot confirmed_bank
};

// What a bank holds: enough to re-verify it from flash alone (prefix digest pins the signed table,
// whose hashes pin every payload). total_len 0 = empty bank.
struct ImageDescriptor {
  uint32_t total_len = 0;
  uint32_t security_counter = 0;
  uint8_t prefix_sha256[32] = {};  // SHA-256 of the bundle bytes [0, payload_offset)
};

struct MetadataRecord {
  // Out of line: each user calls it rather than copying a 92-byte default image of its own.
  MetadataRecord();
  uint32_t seq = 0;
  BootState state = BootState::Confirmed;
  uint8_t confirmed_bank = 0;
  uint8_t trial_bank = 1;
  uint8_t boot_attempts = 0;
  uint32_t security_counter = 0;  // highest counter of a confirmed bundle
  ImageDescriptor images[2];
};

void encode_metadata(const MetadataRecord& rec, uint8_t out[kMetadataRecordLen]);
// Ok, or NotFound if the bytes are not a valid record (magic, format, CRC, field ranges).
Status decode_metadata(const uint8_t* in, size_t len, MetadataRecord& out);

class MetadataStore {
 public:
  explicit MetadataStore(Flash& flash) : flash_(flash) {}

  // The newest valid copy: Ok, or NotFound when neither copy is valid (unprovisioned device).
  Status load(MetadataRecord& out);
  // Writes `rec` with seq = newest valid seq + 1 into the other copy (erase + one write). On Ok,
  // rec.seq holds the sequence number written.
  Status store(MetadataRecord& rec);

 private:
  // Reads both copies into `copies`; `newest` is the index of the newest valid one, or -1.
  Status read_copies(uint8_t (&copies)[2][kMetadataRecordLen], int& newest);
  Flash& flash_;
};

}  // namespace tinyfleet
