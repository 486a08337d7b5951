#include "tinyfleet/bank_writer.h"

#include <cstring>

#include "tinyfleet/bytes.h"

namespace tinyfleet {

namespace {

bool granularity_ok(const FlashGeometry& g) {
  return g.write_align >= 1 && g.write_align <= TINYFLEET_MAX_WRITE_ALIGN && 16 % g.write_align == 0 &&
         g.sector_size >= 16 && g.sector_size % 16 == 0;
}

}  // namespace

Status BankWriter::resume(uint8_t bank, const BundleInfo& info, const uint8_t* prefix) {
  if (bank > 1 || prefix == nullptr) return Status::InvalidArgument;
  FlashGeometry g = flash_.geometry(bank_area(bank));
  if (!granularity_ok(g)) return Status::InvalidArgument;
  if (info.header.total_len > g.size) return Status::BundleTooLarge;
  bank_ = bank;
  std::memcpy(static_cast<void*>(&geo_), &g, sizeof g);  // one call: a struct assignment here compiles to a copy loop
  info_ = &info;
  prefix_ = prefix;
  return Status::Ok;
}

Status BankWriter::begin(uint8_t bank, const BundleInfo& info, const uint8_t* prefix) {
  Status s = resume(bank, info, prefix);
  if (s != Status::Ok) return s;
  // One sector per erase call: bounded time per flash operation (watchdogs, power-cut granularity).
  const uint32_t end = align_up(info.header.total_len, geo_.sector_size);
  for (uint32_t off = 0; off < end; off += geo_.sector_size) {
    s = flash_.erase(bank_area(bank_), off, geo_.sector_size);
    if (s != Status::Ok) return s;
  }
  return flash_.write(bank_area(bank_), 0, prefix_, info.header.payload_offset);
}

Status BankWriter::component_at(uint32_t offset, size_t len, int& index) const {
  for (uint8_t i = 0; i < info_->component_count; ++i) {
    const ComponentEntry& c = info_->components[i];
    if (offset >= c.offset && offset < c.end() && len <= c.end() - offset) {
      index = i;
      return Status::Ok;
    }
  }
  return Status::InvalidArgument;
}

Status BankWriter::hash_flash(Flash& flash, Crypto& crypto, Sha256Context& ctx, FlashArea area, uint32_t offset,
                              uint32_t len, uint8_t* chunk, size_t chunk_len, const uint8_t expected[32],
                              BankWriter* copy_to, uint32_t copy_offset) {
  crypto.sha256_start(ctx);
  uint8_t digest[32];
  for (uint32_t done = 0; done < len;) {
    const uint32_t n = len - done < chunk_len ? len - done : static_cast<uint32_t>(chunk_len);
    Status s = flash.read(area, offset + done, chunk, n);
    if (s == Status::Ok) {
      crypto.sha256_update(ctx, chunk, n);
      if (copy_to != nullptr) s = copy_to->write_aligned(copy_offset + done, chunk, n);
    }
    if (s != Status::Ok) {
      crypto.sha256_finish(ctx, digest);
      return s;
    }
    done += n;
  }
  crypto.sha256_finish(ctx, digest);
  return bytes_equal_ct(digest, expected, 32) ? Status::Ok : Status::HashMismatch;
}

Status BankWriter::ensure_erased(uint32_t offset, size_t len, uint32_t* lo, uint32_t* hi) {
  const FlashArea area = bank_area(bank_);
  // The first and last bytes of the range that are not erased.
  bool dirty = false;
  uint32_t first_dirty = 0, last_dirty = 0;
  for (uint32_t done = 0; done < len;) {
    uint32_t n = static_cast<uint32_t>(len - done < sizeof chunk_ ? len - done : sizeof chunk_);
    Status s = flash_.read(area, offset + done, chunk_, n);
    if (s != Status::Ok) return s;
    for (uint32_t i = 0; i < n; ++i) {
      if (chunk_[i] == geo_.erased_value) continue;
      if (!dirty) first_dirty = offset + done + i;
      dirty = true;
      last_dirty = offset + done + i;
    }
    done += n;
  }
  if (!dirty) return Status::Ok;
  // A torn write left bytes programmed: wipe the sectors holding them (only those: a sector of the range
  // with nothing stale in it may hold bytes of a neighbouring block already rewritten, and wiping it would
  // send that block round again) and tell the caller which bundle bytes went with them. The prefix is
  // rewritten at once if it was in there.
  uint32_t first = first_dirty / geo_.sector_size * geo_.sector_size;
  uint32_t last = align_up(last_dirty + 1, geo_.sector_size);
  for (uint32_t off = first; off < last; off += geo_.sector_size) {
    Status s = flash_.erase(area, off, geo_.sector_size);
    if (s != Status::Ok) return s;
  }
  if (lo != nullptr) *lo = first;
  if (hi != nullptr) *hi = last < info_->header.total_len ? last : info_->header.total_len;
  if (first < info_->header.payload_offset) {
    uint32_t n = info_->header.payload_offset - first;
    uint32_t room = last - first;
    Status s = flash_.write(area, first, prefix_ + first, n < room ? n : room);
    if (s != Status::Ok) return s;
  }
  return Status::Ok;
}

Status BankWriter::write_aligned(uint32_t offset, const uint8_t* data, size_t len) {
  const FlashArea area = bank_area(bank_);
  const uint32_t a = geo_.write_align;
  size_t body = len / a * a;
  if (body > 0) {
    Status s = flash_.write(area, offset, data, body);
    if (s != Status::Ok) return s;
  }
  if (body < len) {  // a component's unaligned tail, padded with the erased value
    uint8_t pad[TINYFLEET_MAX_WRITE_ALIGN];
    std::memset(pad, geo_.erased_value, a);
    std::memcpy(pad, data + body, len - body);
    return flash_.write(area, static_cast<uint32_t>(offset + body), pad, a);
  }
  return Status::Ok;
}

Status BankWriter::write(uint32_t offset, const uint8_t* data, size_t len, uint32_t* erased_lo,
                         uint32_t* erased_hi) {
  if (info_ == nullptr) return Status::InvalidState;
  if (erased_lo != nullptr) *erased_lo = 0;
  if (erased_hi != nullptr) *erased_hi = 0;
  if (len == 0) return Status::Ok;
  int index = -1;
  if (component_at(offset, len, index) != Status::Ok) return Status::InvalidArgument;
  const ComponentEntry& c = info_->components[index];
  const uint32_t a = geo_.write_align;
  if (offset % a != 0 || (len % a != 0 && offset + len != c.end())) return Status::FlashMisaligned;
  Status s = ensure_erased(offset, align_up(static_cast<uint32_t>(len), a), erased_lo, erased_hi);
  if (s != Status::Ok) return s;
  return write_aligned(offset, data, len);
}

Status BankWriter::copy_component(uint8_t index, uint8_t src_bank, uint32_t src_offset, uint32_t* erased_lo,
                                  uint32_t* erased_hi) {
  if (erased_lo != nullptr) *erased_lo = 0;
  if (erased_hi != nullptr) *erased_hi = 0;
  if (info_ == nullptr) return Status::InvalidState;
  if (index >= info_->component_count || src_bank > 1 || src_bank == bank_) return Status::InvalidArgument;
  const ComponentEntry& c = info_->components[index];
  const FlashArea src = bank_area(src_bank);
  if (static_cast<uint64_t>(src_offset) + c.length > flash_.geometry(src).size) return Status::InvalidArgument;
  // The whole target range is made erased first, in one go: an erase between two chunks would wipe the
  // chunks already copied into a shared sector. The wiped range (neighbours' bytes included) is reported.
  Status s = ensure_erased(c.offset, align_up(c.length, geo_.write_align), erased_lo, erased_hi);
  if (s != Status::Ok) return s;
  return hash_flash(flash_, crypto_, sha_, src, src_offset, c.length, chunk_, sizeof chunk_, c.sha256, this, c.offset);
}

Status BankWriter::verify_component(uint8_t index) {
  if (info_ == nullptr) return Status::InvalidState;
  if (index >= info_->component_count) return Status::InvalidArgument;
  const ComponentEntry& c = info_->components[index];
  return hash_flash(flash_, crypto_, sha_, bank_area(bank_), c.offset, c.length, chunk_, sizeof chunk_, c.sha256,
                    nullptr, 0);
}

Status BankWriter::finish(ImageDescriptor& out) {
  if (info_ == nullptr) return Status::InvalidState;
  const uint32_t poff = info_->header.payload_offset;
  // The prefix in flash must be the verified one, byte for byte.
  for (uint32_t done = 0; done < poff;) {
    uint32_t n = poff - done < sizeof chunk_ ? poff - done : static_cast<uint32_t>(sizeof chunk_);
    Status s = flash_.read(bank_area(bank_), done, chunk_, n);
    if (s != Status::Ok) return s;
    if (std::memcmp(chunk_, prefix_ + done, n) != 0) return Status::HashMismatch;
    done += n;
  }
  for (uint8_t i = 0; i < info_->component_count; ++i) {
    Status s = verify_component(i);
    if (s != Status::Ok) return s;
  }
  out.total_len = info_->header.total_len;
  out.security_counter = info_->manifest.security_counter;
  sha256(crypto_, prefix_, poff, out.prefix_sha256);
  return Status::Ok;
}

Status verify_bank_image(Flash& flash, Crypto& crypto, uint8_t bank, const ImageDescriptor& image,
                         uint8_t* window, size_t window_len, BundleInfo& info) {
  if (bank > 1) return Status::InvalidArgument;
  const FlashArea area = bank_area(bank);
  if (image.total_len == 0 || image.total_len > flash.geometry(area).size) return Status::NoValidImage;
  if (window_len < kPrefixWindowLen) return Status::BufferTooSmall;
  Status s = flash.read(area, 0, window, kHeaderLen);
  if (s != Status::Ok) return s;
  s = parse_header(window, kHeaderLen, info.header);
  if (s != Status::Ok) return s;
  if (info.header.total_len != image.total_len) return Status::NoValidImage;
  const uint32_t poff = info.header.payload_offset;
  // The prefix is hashed from flash, then parsed from flash: both through the window, never whole in RAM.
  Sha256Context ctx;
  s = BankWriter::hash_flash(flash, crypto, ctx, area, 0, poff, window, window_len, image.prefix_sha256, nullptr, 0);
  if (s != Status::Ok) return s;
  PrefixSource src(flash, area, window, window_len);
  s = parse_prefix(src, poff, info);
  if (s != Status::Ok) return s;
  for (uint8_t i = 0; i < info.component_count; ++i) {
    const ComponentEntry& c = info.components[i];
    s = BankWriter::hash_flash(flash, crypto, ctx, area, c.offset, c.length, window, window_len, c.sha256, nullptr, 0);
    if (s != Status::Ok) return s;
  }
  return Status::Ok;
}

Status find_component_by_hash(Flash& flash, Crypto& crypto, uint8_t bank, const ImageDescriptor& image,
                              const uint8_t sha256_digest[32], uint32_t& offset, uint32_t& length,
                              uint8_t* prefix_buf, size_t prefix_buf_len, BundleInfo& info) {
  if (bank > 1) return Status::InvalidArgument;
  const FlashArea area = bank_area(bank);
  if (image.total_len == 0) return Status::NotFound;
  if (prefix_buf_len < kHeaderLen) return Status::BufferTooSmall;
  Status s = flash.read(area, 0, prefix_buf, kHeaderLen);
  if (s == Status::Ok) s = parse_header(prefix_buf, kHeaderLen, info.header);
  if (s != Status::Ok) return Status::NotFound;
  const uint32_t poff = info.header.payload_offset;
  if (poff > prefix_buf_len) return Status::BufferTooSmall;
  s = flash.read(area, 0, prefix_buf, poff);
  if (s != Status::Ok) return s;
  uint8_t digest[32];
  sha256(crypto, prefix_buf, poff, digest);
  // Only a prefix the metadata vouches for is trusted to say where a component lies.
  if (!bytes_equal_ct(digest, image.prefix_sha256, 32)) return Status::NotFound;
  if (parse_prefix(prefix_buf, poff, info) != Status::Ok) return Status::NotFound;
  for (uint8_t i = 0; i < info.component_count; ++i) {
    if (std::memcmp(info.components[i].sha256, sha256_digest, 32) == 0) {
      offset = info.components[i].offset;
      length = info.components[i].length;
      return Status::Ok;
    }
  }
  return Status::NotFound;
}

}  // namespace tinyfleet
