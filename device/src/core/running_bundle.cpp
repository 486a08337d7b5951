#include "tinyfleet/running_bundle.h"

#include "tinyfleet/bytes.h"

namespace tinyfleet {

bool RunningBundle::load(Flash& flash, Crypto& crypto, uint8_t bank, const ImageDescriptor& image, uint8_t* scratch,
                         size_t scratch_len, BundleInfo& table) {
  const FlashArea area = bank_area(bank);
  BundleHeader h;
  uint8_t digest[32];
  known_ = false;
  count_ = 0;
  if (image.total_len != 0 && flash.read(area, 0, scratch, kHeaderLen) == Status::Ok &&
      parse_header(scratch, kHeaderLen, h) == Status::Ok && h.payload_offset <= scratch_len &&
      flash.read(area, 0, scratch, h.payload_offset) == Status::Ok &&
      parse_prefix(scratch, h.payload_offset, table) == Status::Ok) {
    sha256(crypto, scratch, h.payload_offset, digest);
    known_ = bytes_equal_ct(digest, image.prefix_sha256, 32);
  }
  if (!known_) return false;
  health_ = health_contract(table);
  count_ = table.component_count;
  table_ = kHeaderLen + table.header.manifest_len;
  for (uint8_t i = 0; i < count_; ++i) {
    components_[i].offset = table.components[i].offset;
    components_[i].length = table.components[i].length;
  }
  return true;
}

size_t RunningBundle::read_component(Flash& flash, uint8_t bank, const BundleInfo& table, ComponentType type,
                                     uint8_t* out, size_t cap) {
  const int i = table.find(type);
  if (i < 0) return 0;
  const ComponentEntry& e = table.components[i];
  if (e.length > cap || flash.read(bank_area(bank), e.offset, out, e.length) != Status::Ok) return 0;
  return e.length;
}

bool RunningBundle::component_sha256(Flash& flash, uint8_t bank, uint8_t i, uint8_t out[32]) const {
  return flash.read(bank_area(bank), table_ + kEntryLen * i + kEntrySha256At, out, 32) == Status::Ok;
}

}  // namespace tinyfleet
