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

Status decode_metadata(const uint8_t* in, size_t len, MetadataRecord& out) {
  if (len < kMetadataRecordLen) return Status::NotFound;
  if (load_u32le(in) != kMagic || in[4] != kFormat) return Status::NotFound;
  if (load_u32le(in + kCrcOffset) != crc32_ieee(in, kCrcOffset)) return Status::NotFound;
  if (in[5] < 1 || in[5] > 3 || in[6] > 1 || in[7] > 1 || in[6] == in[7]) return Status::NotFound;
  // Reserved bytes must be zero: one record, one encoding (found by fuzz_metadata).
  if (in[13] != 0 || in[14] != 0 || in[15] != 0) return Status::NotFound;
  for (uint32_t i = 100; i < kCrcOffset; ++i)
    if (in[i] != 0) return Status::NotFound;
  out.state = static_cast<BootState>(in[5]);
  out.confirmed_bank = in[6];
  out.trial_bank = in[7];
  out.seq = load_u32le(in + 8);
  out.boot_attempts = in[12];
  out.security_counter = load_u32le(in + 16);
  for (int i = 0; i < 2; ++i) decode_image(in + kImageOffset[i], out.images[i]);
  return Status::Ok;
}

Status MetadataStore::read_copy(FlashArea area, MetadataRecord& out, bool& valid) {
  uint8_t buf[kMetadataRecordLen];
  valid = false;
  Status s = flash_.read(area, 0, buf, sizeof buf);
  if (s != Status::Ok) return s;
  valid = decode_metadata(buf, sizeof buf, out) == Status::Ok;
  return Status::Ok;
}

Status MetadataStore::load(MetadataRecord& out) {
  MetadataRecord a, b;
  bool va = false, vb = false;
  Status s = read_copy(FlashArea::Meta0, a, va);
  if (s == Status::Ok) s = read_copy(FlashArea::Meta1, b, vb);
  if (s != Status::Ok) return s;
  if (!va && !vb) return Status::NotFound;
  out = (va && (!vb || a.seq >= b.seq)) ? a : b;
  return Status::Ok;
}

Status MetadataStore::store(MetadataRecord& rec) {
  MetadataRecord a, b;
  bool va = false, vb = false;
  Status s = read_copy(FlashArea::Meta0, a, va);
  if (s == Status::Ok) s = read_copy(FlashArea::Meta1, b, vb);
  if (s != Status::Ok) return s;
  // Overwrite the copy that does not hold the newest valid record.
  FlashArea target = FlashArea::Meta0;
  uint32_t newest = 0;
  if (va && (!vb || a.seq >= b.seq)) {
    target = FlashArea::Meta1;
    newest = a.seq;
  } else if (vb) {
    newest = b.seq;
  }
  FlashGeometry g = flash_.geometry(target);
  if (g.size < kMetadataRecordLen || g.sector_size == 0 || kMetadataRecordLen % g.write_align != 0)
    return Status::InvalidArgument;
  rec.seq = newest + 1;
  uint8_t buf[kMetadataRecordLen];
  encode_metadata(rec, buf);
  s = flash_.erase(target, 0, align_up(kMetadataRecordLen, g.sector_size));
  if (s != Status::Ok) return s;
  return flash_.write(target, 0, buf, sizeof buf);
}

}  // namespace tinyfleet
