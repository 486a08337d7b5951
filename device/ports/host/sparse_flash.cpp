#include "sparse_flash.h"

#include <algorithm>
#include <cstring>

namespace tinyfleet::host {

SparseStorage::SparseStorage(const FlashLayout& layout) : erased_(layout.erased_value) {
  for (uint8_t i = 0; i < kFlashAreaCount; ++i) sector_[i] = layout.areas[i].sector_size;
}

template <typename F>
void SparseStorage::pieces(uint8_t area, uint32_t offset, size_t len, F&& f) const {
  const uint32_t s = sector_[area];
  size_t done = 0;
  while (done < len) {
    const uint32_t at = static_cast<uint32_t>(offset + done);
    const uint32_t within = at % s;
    const size_t n = std::min<size_t>(s - within, len - done);
    f(at / s, within, n, done);
    done += n;
  }
}

void SparseStorage::load(uint8_t area, uint32_t offset, uint8_t* dst, size_t len) const {
  pieces(area, offset, len, [&](uint32_t index, uint32_t within, size_t n, size_t done) {
    auto it = sectors_[area].find(index);
    if (it == sectors_[area].end()) {
      std::memset(dst + done, erased_, n);
    } else {
      std::memcpy(dst + done, it->second.data() + within, n);
    }
  });
}

void SparseStorage::store(uint8_t area, uint32_t offset, const uint8_t* src, size_t len) {
  pieces(area, offset, len, [&](uint32_t index, uint32_t within, size_t n, size_t done) {
    std::vector<uint8_t>& sec = sectors_[area][index];
    if (sec.empty()) sec.assign(sector_[area], erased_);
    std::memcpy(sec.data() + within, src + done, n);
  });
}

void SparseStorage::fill(uint8_t area, uint32_t offset, size_t len, uint8_t value) {
  pieces(area, offset, len, [&](uint32_t index, uint32_t within, size_t n, size_t) {
    auto it = sectors_[area].find(index);
    if (value == erased_ && n == sector_[area]) {
      if (it != sectors_[area].end()) sectors_[area].erase(it);
      return;
    }
    if (it == sectors_[area].end()) {
      if (value == erased_) return;
      it = sectors_[area].emplace(index, std::vector<uint8_t>(sector_[area], erased_)).first;
    }
    std::memset(it->second.data() + within, value, n);
  });
}

bool SparseStorage::holds_only(uint8_t area, uint32_t offset, size_t len, uint8_t value) const {
  bool all = true;
  pieces(area, offset, len, [&](uint32_t index, uint32_t within, size_t n, size_t) {
    auto it = sectors_[area].find(index);
    if (it == sectors_[area].end()) {
      all = all && value == erased_;
      return;
    }
    const uint8_t* p = it->second.data() + within;
    all = all && std::all_of(p, p + n, [value](uint8_t b) { return b == value; });
  });
  return all;
}

size_t SparseStorage::bytes_used() const {
  size_t n = 0;
  for (uint8_t i = 0; i < kFlashAreaCount; ++i) n += sectors_[i].size() * sector_[i];
  return n;
}

SparseFlash::SparseFlash(const FlashLayout& layout)
    : SparseMemory(layout), NorFlash(storage, layout.write_align, layout.erased_value) {
  for (uint8_t i = 0; i < kFlashAreaCount; ++i) define_area(i, {layout.areas[i].size, layout.areas[i].sector_size});
}

SparseFlash::~SparseFlash() = default;

FlashGeometry SparseFlash::geometry(FlashArea area) const { return NorFlash::geometry(area); }

}  // namespace tinyfleet::host
