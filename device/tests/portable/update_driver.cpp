#include "update_driver.h"

#include <cstring>

using namespace tinyfleet;

namespace tftest {
namespace {
uint8_t g_prefix_scratch[TINYFLEET_PREFIX_BUFFER_SIZE];
BundleInfo g_info_scratch;
}  // namespace

Status make_image(const uint8_t* bytes, uint32_t len, Crypto& crypto, Image& out) {
  out.bytes = bytes;
  out.len = len;
  Status s = parse_prefix(bytes, len, out.info);
  if (s != Status::Ok) return s;
  out.desc.total_len = out.info.header.total_len;
  out.desc.security_counter = out.info.manifest.security_counter;
  sha256(crypto, bytes, out.info.header.payload_offset, out.desc.prefix_sha256);
  return Status::Ok;
}

Status write_image(Flash& flash, Crypto& crypto, uint8_t bank, const Image& image, uint32_t block,
                   InstallStats* stats, const MetadataRecord* active) {
  BankWriter w(flash, crypto);
  Status s = w.begin(bank, image.info, image.bytes);
  if (s != Status::Ok) return s;
  for (uint8_t i = 0; i < image.info.component_count; ++i) {
    const ComponentEntry& c = image.info.components[i];
    if (active != nullptr) {
      const uint8_t src = active->confirmed_bank;
      uint32_t off = 0, len = 0;
      s = find_component_by_hash(flash, crypto, src, active->images[src], c.sha256, off, len, g_prefix_scratch,
                                 sizeof g_prefix_scratch, g_info_scratch);
      if (s == Status::Ok && len == c.length) {
        s = w.copy_component(i, src, off);
        if (s == Status::Ok) {
          if (stats != nullptr) ++stats->components_copied;
          continue;
        }
        // The source was not what its table said: fall back to downloading (re-erase by rewriting).
        if (s != Status::HashMismatch) return s;
      } else if (s != Status::NotFound && s != Status::Ok) {
        return s;
      }
    }
    if (stats != nullptr) ++stats->components_downloaded;
    for (uint32_t off = 0; off < c.length; off += block) {
      const uint32_t n = c.length - off < block ? c.length - off : block;
      s = w.write(c.offset + off, image.bytes + c.offset + off, n);
      if (s != Status::Ok) return s;
      if (stats != nullptr) ++stats->blocks_downloaded;
    }
  }
  ImageDescriptor desc;
  s = w.finish(desc);
  if (s != Status::Ok) return s;
  return std::memcmp(desc.prefix_sha256, image.desc.prefix_sha256, 32) == 0 ? Status::Ok : Status::HashMismatch;
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
  uint8_t buf[256];
  auto same = [&](uint32_t from, uint32_t len) {
    for (uint32_t off = 0; off < len; off += sizeof buf) {
      const uint32_t n = len - off < sizeof buf ? len - off : static_cast<uint32_t>(sizeof buf);
      if (flash.read(bank_area(bank), from + off, buf, n) != Status::Ok) return false;
      if (std::memcmp(buf, image.bytes + from + off, n) != 0) return false;
    }
    return true;
  };
  if (!same(0, image.info.header.payload_offset)) return false;
  for (uint8_t i = 0; i < image.info.component_count; ++i)
    if (!same(image.info.components[i].offset, image.info.components[i].length)) return false;
  return true;
}

}  // namespace tftest
