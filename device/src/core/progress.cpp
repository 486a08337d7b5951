#include "tinyfleet/progress.h"

#include <cstddef>
#include <cstring>

#include "tinyfleet/bytes.h"

namespace tinyfleet {
namespace {
constexpr char kMagic[] = "TFAP";
}

static_assert(TINYFLEET_MAX_BLOCKS <= 65535, "download_blocks is stored as u16");

// Layout (little-endian): 0 magic 'TFAP', 4 u8 format 1, 5 u8 attempt, 6 u16 attempt_reason, 8 u32 seq,
// 12 u32 epoch, 16 u32 highest_desired_seq, 20 u32 attempt_desired_seq, 24 attempt_digest[32],
// 56 u8 flags (bit 0 downloading, bit 1 attempt_reported), 57 u8 download_bank, 58 u16 download_blocks, 60 u32 download_desired_seq,
// 64 download_digest[32], 96 u32 attempt_detail0, 100 u32 attempt_detail1, 104 bitmap[kBitmapBytes],
// then u32 CRC-32 of everything before it.
namespace {
#define FIELD(wire, member) \
  WireField { wire, offsetof(ProgressRecord, member), sizeof(ProgressRecord::member) }
// Every field but the flags byte, download_blocks (u32 in memory, u16 on the wire) and the bitmap.
constexpr WireField kFields[] = {
    FIELD(5, attempt),          FIELD(6, attempt_reason),        FIELD(8, seq),
    FIELD(12, epoch),           FIELD(16, highest_desired_seq),  FIELD(20, attempt_desired_seq),
    FIELD(24, attempt_digest),  FIELD(57, download_bank),        FIELD(60, download_desired_seq),
    FIELD(64, download_digest), FIELD(96, attempt_detail0),      FIELD(100, attempt_detail1),
};
#undef FIELD
constexpr size_t kFieldCount = sizeof kFields / sizeof kFields[0];
}  // namespace

void encode_progress(const ProgressRecord& r, uint8_t out[kProgressRecordLen]) {
  encode_record(out, kProgressRecordLen, kMagic, &r, kFields, kFieldCount);
  out[56] = static_cast<uint8_t>((r.downloading ? 1 : 0) | (r.attempt_reported ? 2 : 0));
  store_u16le(out + 58, static_cast<uint16_t>(r.download_blocks));
  std::memcpy(out + 104, r.bitmap, kBitmapBytes);
  store_u32le(out + 104 + kBitmapBytes, crc32_ieee(out, 104 + kBitmapBytes));
}

namespace {

// Every check decode_progress() makes, without decoding: a copy is valid exactly when this holds.
bool progress_valid(const uint8_t* in, size_t len) {
  if (len < kProgressRecordLen || std::memcmp(in, kMagic, 4) != 0 || in[4] != 1) return false;
  if (load_u32le(in + 104 + kBitmapBytes) != crc32_ieee(in, 104 + kBitmapBytes)) return false;
  if (in[5] > 2 || in[56] > 3 || in[57] > 1) return false;
  return load_u16le(in + 58) <= TINYFLEET_MAX_BLOCKS;
}

}  // namespace

Status decode_progress(const uint8_t* in, size_t len, ProgressRecord& r) {
  if (!progress_valid(in, len)) return Status::NotFound;
  load_fields(&r, in, kFields, kFieldCount);
  r.downloading = (in[56] & 1) != 0;
  r.attempt_reported = (in[56] & 2) != 0;
  r.download_blocks = load_u16le(in + 58);
  std::memcpy(r.bitmap, in + 104, kBitmapBytes);
  return Status::Ok;
}

uint32_t ProgressStore::copy_span() const {
  FlashGeometry g = flash_.geometry(FlashArea::Scratch);
  if (g.size == 0 || g.sector_size == 0) return 0;
  return (g.size / 2) / g.sector_size * g.sector_size;
}

uint32_t ProgressStore::copy_offset(int copy) const { return copy == 0 ? 0 : copy_span(); }

bool ProgressStore::available() const {
  FlashGeometry g = flash_.geometry(FlashArea::Scratch);
  return copy_span() >= align_up(kProgressRecordLen, g.write_align == 0 ? 1 : g.write_align) &&
         g.write_align <= TINYFLEET_MAX_WRITE_ALIGN;
}

// Whether a copy is valid, and its seq, read through buf without a ProgressRecord on the stack.
Status ProgressStore::peek_copy(int copy, uint8_t* buf, bool& valid, uint32_t& seq) {
  valid = false;
  seq = 0;
  Status s = flash_.read(FlashArea::Scratch, copy_offset(copy), buf, kProgressRecordLen);
  if (s != Status::Ok) return s;
  valid = progress_valid(buf, kProgressRecordLen);
  if (valid) seq = load_u32le(buf + 8);
  return Status::Ok;
}

// The newest valid copy (by wrapping seq) and its seq, or -1 if neither is valid.
Status ProgressStore::newest_copy(uint8_t* buf, int& newest, uint32_t& newest_seq) {
  bool va = false, vb = false;
  uint32_t sa = 0, sb = 0;
  Status s = peek_copy(0, buf, va, sa);
  if (s != Status::Ok) return s;
  s = peek_copy(1, buf, vb, sb);
  if (s != Status::Ok) return s;
  // Sequence numbers compare by wrapping difference (a record is written at most every block).
  if (va && (!vb || static_cast<int32_t>(sa - sb) > 0)) {
    newest = 0;
    newest_seq = sa;
  } else if (vb) {
    newest = 1;
    newest_seq = sb;
  } else {
    newest = -1;
    newest_seq = 0;
  }
  return Status::Ok;
}

Status ProgressStore::load(ProgressRecord& out) {
  if (!available()) return Status::NotFound;
  uint8_t buf[kProgressRecordLen];
  int newest = -1;
  uint32_t seq = 0;
  Status s = newest_copy(buf, newest, seq);
  if (s != Status::Ok) return s;
  if (newest < 0) return Status::NotFound;
  s = flash_.read(FlashArea::Scratch, copy_offset(newest), buf, kProgressRecordLen);
  if (s != Status::Ok) return s;
  return decode_progress(buf, kProgressRecordLen, out);
}

Status ProgressStore::store(ProgressRecord& rec) {
  if (!available()) return Status::NotFound;
  uint8_t buf[kProgressRecordLen + TINYFLEET_MAX_WRITE_ALIGN];  // the record, padded to the write granularity
  int newest = -1;
  uint32_t newest_seq = 0;
  Status s = newest_copy(buf, newest, newest_seq);
  if (s != Status::Ok) return s;
  const uint32_t at = copy_offset(newest == 0 ? 1 : 0);
  rec.seq = newest_seq + 1;
  FlashGeometry g = flash_.geometry(FlashArea::Scratch);
  uint32_t len = align_up(kProgressRecordLen, g.write_align);
  s = flash_.erase(FlashArea::Scratch, at, align_up(len, g.sector_size));
  if (s != Status::Ok) return s;
  std::memset(buf, g.erased_value, sizeof(buf));
  encode_progress(rec, buf);
  return flash_.write(FlashArea::Scratch, at, buf, len);
}

}  // namespace tinyfleet
