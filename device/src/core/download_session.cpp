#include "tinyfleet/download_session.h"

#include <cstring>

#include "tinyfleet/protocol.h"

namespace tinyfleet {

bool DownloadSession::plan() {
  total_blocks_ = 0;
  for (uint8_t c = 0; c < info_.component_count; ++c) {
    block_base_[c] = total_blocks_;
    total_blocks_ += block_count(info_.components[c].length);
  }
  std::memset(hash_failures_, 0, sizeof(hash_failures_));
  return total_blocks_ <= TINYFLEET_MAX_BLOCKS;
}

void DownloadSession::set_component(uint8_t* bitmap, uint8_t c, bool done) const {
  const uint32_t n = block_count(info_.components[c].length);
  for (uint32_t b = 0; b < n; ++b) set_block(bitmap, c, b, done);
}

bool DownloadSession::component_complete(const uint8_t* bitmap, uint8_t c) const {
  const uint32_t n = block_count(info_.components[c].length);
  for (uint32_t b = 0; b < n; ++b) {
    if (!block_done(bitmap, c, b)) return false;
  }
  return true;
}

uint32_t DownloadSession::blocks_present(const uint8_t* bitmap) const {
  uint32_t n = 0;
  for (uint32_t i = 0; i < total_blocks_; ++i) n += (bitmap[i / 8] >> (i % 8)) & 1;
  return n;
}

void DownloadSession::clear_range(uint8_t* bitmap, uint32_t lo, uint32_t hi) const {
  for (uint8_t c = 0; c < info_.component_count; ++c) {
    const ComponentEntry& e = info_.components[c];
    const uint32_t n = block_count(e.length);
    for (uint32_t b = 0; b < n; ++b) {
      const uint32_t start = e.offset + b * kBlockSize;
      const uint32_t end = start + block_data_len(e.length, b);
      if (start < hi && lo < end) set_block(bitmap, c, b, false);
    }
  }
}

int DownloadSession::wanted(const uint8_t* bitmap, const uint8_t sha256[32], uint32_t index) const {
  for (uint8_t c = 0; c < info_.component_count; ++c) {
    if (std::memcmp(info_.components[c].sha256, sha256, 32) == 0 &&
        index < block_count(info_.components[c].length) && !block_done(bitmap, c, index)) {
      return c;
    }
  }
  return -1;
}

const DownloadSession::Slot* DownloadSession::claim(const uint8_t* bitmap) {
  Slot* slot = nullptr;
  for (Slot& s : window_) {
    if (!s.used) {
      slot = &s;
      break;
    }
  }
  if (slot == nullptr) return nullptr;
  for (uint8_t c = 0; c < info_.component_count; ++c) {
    const uint32_t n = block_count(info_.components[c].length);
    for (uint32_t b = 0; b < n; ++b) {
      if (block_done(bitmap, c, b) || in_flight(c, b) != nullptr) continue;
      slot->used = true;
      slot->component = c;
      slot->block = b;
      return slot;
    }
  }
  return nullptr;
}

DownloadSession::Slot* DownloadSession::in_flight(uint8_t c, uint32_t b) {
  for (Slot& s : window_) {
    if (s.used && s.component == c && s.block == b) return &s;
  }
  return nullptr;
}

}  // namespace tinyfleet
