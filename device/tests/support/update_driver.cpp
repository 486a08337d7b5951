#include "support/update_driver.h"

#include <cstring>
#include <stdexcept>

using namespace tinyfleet;

namespace tftest {

Image make_image(std::vector<uint8_t> bytes, Crypto& crypto) {
  Image img;
  img.bytes = std::move(bytes);
  if (parse_prefix(img.bytes.data(), img.bytes.size(), img.info) != Status::Ok)
    throw std::runtime_error("make_image: bundle does not parse");
  img.desc.total_len = img.info.header.total_len;
  img.desc.security_counter = img.info.manifest.security_counter;
  sha256(crypto, img.bytes.data(), img.info.header.payload_offset, img.desc.prefix_sha256);
  return img;
}

Status write_image(Flash& flash, Crypto& crypto, uint8_t bank, const Image& image, uint32_t block,
                   InstallStats* stats, const MetadataRecord* active) {
  BankWriter w(flash, crypto);
  Status s = w.begin(bank, image.info, image.bytes.data());
  if (s != Status::Ok) return s;
  static uint8_t prefix_buf[TINYFLEET_PREFIX_BUFFER_SIZE];
  static BundleInfo scratch;
  for (uint8_t i = 0; i < image.info.component_count; ++i) {
    const ComponentEntry& c = image.info.components[i];
    if (active != nullptr) {
      const uint8_t src = active->confirmed_bank;
      uint32_t off = 0, len = 0;
      s = find_component_by_hash(flash, crypto, src, active->images[src], c.sha256, off, len, prefix_buf,
                                 sizeof prefix_buf, scratch);
      if (s == Status::Ok && len == c.length) {
        s = w.copy_component(i, src, off);
        if (s == Status::Ok) {
          if (stats) ++stats->components_copied;
          continue;
        }
        if (s != Status::HashMismatch) return s;
        // The source was not what its table said: fall back to downloading (re-erase by rewriting).
      } else if (s != Status::NotFound && s != Status::Ok) {
        return s;
      }
    }
    if (stats) ++stats->components_downloaded;
    for (uint32_t off = 0; off < c.length; off += block) {
      uint32_t n = c.length - off < block ? c.length - off : block;
      s = w.write(c.offset + off, image.bytes.data() + c.offset + off, n);
      if (s != Status::Ok) return s;
      if (stats) ++stats->blocks_downloaded;
    }
  }
  ImageDescriptor desc;
  s = w.finish(desc);
  if (s != Status::Ok) return s;
  if (std::memcmp(desc.prefix_sha256, image.desc.prefix_sha256, 32) != 0) return Status::HashMismatch;
  return Status::Ok;
}

Status install_update(Flash& flash, Crypto& crypto, BootSelector& boot, const Image& image, uint32_t block,
                      InstallStats* stats) {
  MetadataRecord rec;
  Status s = boot.store().load(rec);
  if (s != Status::Ok) return s;
  const uint8_t target = static_cast<uint8_t>(1 - rec.confirmed_bank);
  s = write_image(flash, crypto, target, image, block, stats, &rec);
  if (s != Status::Ok) return s;
  return boot.install_trial(target, image.desc);
}

bool bank_holds(Flash& flash, uint8_t bank, const Image& image) {
  std::vector<uint8_t> got(image.info.header.total_len);
  if (flash.read(bank_area(bank), 0, got.data(), got.size()) != Status::Ok) return false;
  const uint32_t poff = image.info.header.payload_offset;
  if (std::memcmp(got.data(), image.bytes.data(), poff) != 0) return false;
  for (uint8_t i = 0; i < image.info.component_count; ++i) {
    const ComponentEntry& c = image.info.components[i];
    if (std::memcmp(got.data() + c.offset, image.bytes.data() + c.offset, c.length) != 0) return false;
  }
  return true;
}

}  // namespace tftest
