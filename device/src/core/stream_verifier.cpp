#include "tinyfleet/stream_verifier.h"

#include <cstring>

#include "tinyfleet/bytes.h"

namespace tinyfleet {

void StreamVerifier::reset() {
  status_ = Status::NeedMoreBytes;
  prefix_ok_ = false;
  pos_ = 0;
  need_ = kHeaderLen;
  cur_ = 0;
}

Status StreamVerifier::feed(const uint8_t* data, size_t len) {
  if (status_ != Status::NeedMoreBytes) {
    // Complete (Ok) and more bytes arrive: they lie past total_len.
    if (status_ == Status::Ok && len > 0) return fail(Status::OutOfRange);
    return status_;
  }
  if (!prefix_ok_) {
    Status s = feed_prefix(data, len);
    if (s != Status::NeedMoreBytes || !prefix_ok_) return s;
  }
  return feed_payload(data, len);
}

Status StreamVerifier::feed_prefix(const uint8_t*& data, size_t& len) {
  while (!prefix_ok_ && len > 0) {
    size_t take = need_ - pos_;
    if (take > len) take = len;
    std::memcpy(prefix_ + pos_, data, take);
    data += take;
    len -= take;
    pos_ += static_cast<uint32_t>(take);
    if (pos_ < need_) {
      // Reject a wrong magic as soon as its bytes arrive.
      if (std::memcmp(prefix_, kBundleMagic, pos_ < 8 ? pos_ : 8) != 0) return fail(Status::BadMagic);
      return Status::NeedMoreBytes;
    }
    if (need_ == kHeaderLen) {
      Status s = parse_header(prefix_, pos_, info_.header);
      if (s != Status::Ok) return fail(s);
      if (info_.header.payload_offset > sizeof prefix_) return fail(Status::Oversize);
      need_ = info_.header.payload_offset;
      continue;
    }
    Status s = parse_prefix(prefix_, pos_, info_);
    if (s == Status::Ok) s = check_signature(info_, prefix_, crypto_, policy_);
    if (s == Status::Ok) s = check_policy(info_, policy_);
    if (s != Status::Ok) return fail(s);
    prefix_ok_ = true;
    // Components in offset order: the order their bytes arrive.
    for (uint8_t i = 0; i < info_.component_count; ++i) {
      uint8_t j = i;
      while (j > 0 && info_.components[order_[j - 1]].offset > info_.components[i].offset) {
        order_[j] = order_[j - 1];
        --j;
      }
      order_[j] = i;
    }
    cur_ = 0;
    if (info_.component_count > 0) crypto_.sha256_start(sha_);
  }
  return Status::NeedMoreBytes;
}

namespace {

// True if [from, to) of the chunk that starts at bundle offset `start` is all zero (empty when to <= from).
bool gap_is_zero(const uint8_t* data, uint32_t start, uint32_t from, uint32_t to) {
  for (uint32_t i = from; i < to; ++i)
    if (data[i - start] != 0) return false;
  return true;
}

}  // namespace

// Bytes outside every payload are checked zero as they arrive (docs/bundle-format.md, "Component table").
Status StreamVerifier::feed_payload(const uint8_t* data, size_t len) {
  const uint32_t total = info_.header.total_len;
  size_t in_range = total - pos_ < len ? total - pos_ : len;
  const uint32_t start = pos_;
  const uint32_t stop = pos_ + static_cast<uint32_t>(in_range);
  uint32_t at = start;  // the first byte of the chunk not yet hashed or checked
  while (cur_ < info_.component_count) {
    const ComponentEntry& c = info_.components[order_[cur_]];
    if (!gap_is_zero(data, start, at, c.offset < stop ? c.offset : stop)) {
      pos_ = stop;
      return fail(Status::OutOfRange);
    }
    uint32_t lo = c.offset > start ? c.offset : start;
    uint32_t hi = c.end() < stop ? c.end() : stop;
    if (lo < hi) crypto_.sha256_update(sha_, data + (lo - start), hi - lo);
    if (stop < c.end()) break;
    at = c.end();
    uint8_t digest[32];
    crypto_.sha256_finish(sha_, digest);
    if (!bytes_equal_ct(digest, c.sha256, 32)) {
      pos_ = stop;
      return fail(Status::HashMismatch);
    }
    ++cur_;
    if (cur_ < info_.component_count) crypto_.sha256_start(sha_);
  }
  if (cur_ == info_.component_count && !gap_is_zero(data, start, at, stop)) {
    pos_ = stop;
    return fail(Status::OutOfRange);
  }
  pos_ = stop;
  if (in_range < len) return fail(Status::OutOfRange);
  if (pos_ == total) return status_ = Status::Ok;
  return Status::NeedMoreBytes;
}

Status StreamVerifier::finish() {
  if (status_ != Status::NeedMoreBytes) return status_;
  return fail(Status::Truncated);
}

}  // namespace tinyfleet
