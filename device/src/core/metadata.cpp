#include "tinyfleet/metadata.h"

#include <cstring>

#include "tinyfleet/bytes.h"

namespace tinyfleet {

namespace {
constexpr uint32_t kMagic = 0x444D4654;  // "TFMD"
constexpr uint8_t kFormat = 1;
constexpr uint32_t kCrcOffset = 108;
constexpr uint32_t kImageOffset[2] = {20, 60};

void encode_image(const ImageDescriptor& img, uint8_t* p) {
  store_u32le(p, img.total_len);
  store_u32le(p + 4, img.security_counter);
  std::memcpy(p + 8, img.prefix_sha256, 32);
}

void decode_image(const uint8_t* p, ImageDescriptor& img) {
  img.total_len = load_u32le(p);
  img.security_counter = load_u32le(p + 4);
  std::memcpy(img.prefix_sha256, p + 8, 32);
}
}  // namespace

MetadataRecord::MetadataRecord() = default;

void encode_metadata(const MetadataRecord& rec, uint8_t out[kMetadataRecordLen]) {
  std::memset(out, 0, kMetadataRecordLen);
  store_u32le(out, kMagic);
  out[4] = kFormat;
  out[5] = static_cast<uint8_t>(rec.state);
  out[6] = rec.confirmed_bank;
  out[7] = rec.trial_bank;
  store_u32le(out + 8, rec.seq);
  out[12] = rec.boot_attempts;
  store_u32le(out + 16, rec.security_counter);
  for (int i = 0; i < 2; ++i) encode_image(rec.images[i], out + kImageOffset[i]);
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
  out.state = static_cast<BootState>(in[5]);
  out.confirmed_bank = in[6];
  out.trial_bank = in[7];
  out.seq = load_u32le(in + 8);
  out.boot_attempts = in[12];
  out.security_counter = load_u32le(in + 16);
  for (int i = 0; i < 2; ++i) decode_image(in + kImageOffset[i], out.images[i]);
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
