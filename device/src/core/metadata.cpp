#include "tinyfleet/metadata.h"

#include <cstddef>
#include <cstring>

#include "tinyfleet/bytes.h"

namespace tinyfleet {

namespace {
constexpr uint32_t kMagic = 0x444D4654;  // "TFMD"
constexpr uint8_t kFormat = 1;
constexpr uint32_t kCrcOffset = 108;

#define FIELD(wire, member) \
  WireField { wire, offsetof(MetadataRecord, member), sizeof(MetadataRecord::member) }
// Every field after the magic and format; offsets 13-15 and 100-107 are reserved (zero).
constexpr WireField kFields[] = {
    FIELD(5, state),
    FIELD(6, confirmed_bank),
    FIELD(7, trial_bank),
    FIELD(8, seq),
    FIELD(12, boot_attempts),
    FIELD(16, security_counter),
    FIELD(20, images[0].total_len),
    FIELD(24, images[0].security_counter),
    FIELD(28, images[0].prefix_sha256),
    FIELD(60, images[1].total_len),
    FIELD(64, images[1].security_counter),
    FIELD(68, images[1].prefix_sha256),
};
#undef FIELD
constexpr size_t kFieldCount = sizeof kFields / sizeof kFields[0];
}  // namespace

MetadataRecord::MetadataRecord() = default;

void encode_metadata(const MetadataRecord& rec, uint8_t out[kMetadataRecordLen]) {
  encode_record(out, kMetadataRecordLen, "TFMD", &rec, kFields, kFieldCount);  // format 1 = kFormat
  store_u32le(out + kCrcOffset, crc32_ieee(out, kCrcOffset));
}

namespace {

// Every check decode_metadata() makes: a copy is valid exactly when this holds.
bool metadata_valid(const uint8_t* in) {
  if (load_u32le(in) != kMagic || in[4] != kFormat) return false;
  if (load_u32le(in + kCrcOffset) != crc32_ieee(in, kCrcOffset)) return false;
  if (in[5] < 1 || in[5] > 3 || in[6] > 1 || in[7] > 1 || in[6] == in[7]) return false;
  // Reserved bytes must be zero: one record, one encoding (found by fuzz_metadata).
  if (in[13] != 0 || in[14] != 0 || in[15] != 0) return false;
  for (uint32_t i = 100; i < kCrcOffset; ++i)
    if (in[i] != 0) return false;
  return true;
}

}  // namespace

Status decode_metadata(const uint8_t* in, size_t len, MetadataRecord& out) {
  if (len < kMetadataRecordLen || !metadata_valid(in)) return Status::NotFound;
  load_fields(&out, in, kFields, kFieldCount);
  return Status::Ok;
}

Status MetadataStore::read_copies(uint8_t (&copies)[2][kMetadataRecordLen], int& newest) {
  newest = -1;
  Status s = flash_.read(FlashArea::Meta0, 0, copies[0], kMetadataRecordLen);
  if (s == Status::Ok) s = flash_.read(FlashArea::Meta1, 0, copies[1], kMetadataRecordLen);
  if (s != Status::Ok) return s;
  const bool va = metadata_valid(copies[0]);
  const bool vb = metadata_valid(copies[1]);
  if (va && (!vb || load_u32le(copies[0] + 8) >= load_u32le(copies[1] + 8))) {
    newest = 0;
  } else if (vb) {
    newest = 1;
  }
  return Status::Ok;
}

Status MetadataStore::load(MetadataRecord& out) {
  uint8_t copies[2][kMetadataRecordLen];
  int newest = -1;
  Status s = read_copies(copies, newest);
  if (s != Status::Ok) return s;
  if (newest < 0) return Status::NotFound;
  return decode_metadata(copies[newest], kMetadataRecordLen, out);
}

Status MetadataStore::store(MetadataRecord& rec) {
  uint8_t copies[2][kMetadataRecordLen];
  int newest = -1;
  Status s = read_copies(copies, newest);
  if (s != Status::Ok) return s;
  // Overwrite the copy that does not hold the newest valid record.
  const FlashArea target = newest == 0 ? FlashArea::Meta1 : FlashArea::Meta0;
  const uint32_t newest_seq = newest < 0 ? 0 : load_u32le(copies[newest] + 8);
  FlashGeometry g = flash_.geometry(target);
  if (g.size < kMetadataRecordLen || g.sector_size == 0 || kMetadataRecordLen % g.write_align != 0)
    return Status::InvalidArgument;
  rec.seq = newest_seq + 1;
  uint8_t* buf = copies[0];
  encode_metadata(rec, buf);
  s = flash_.erase(target, 0, align_up(kMetadataRecordLen, g.sector_size));
  if (s != Status::Ok) return s;
  return flash_.write(target, 0, buf, kMetadataRecordLen);
}

}  // namespace tinyfleet
