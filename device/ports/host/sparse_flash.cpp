#include "sparse_flash.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <string_view>

namespace tinyfleet::host {

namespace {
size_t hash_of(const std::vector<uint8_t>& b) {
  return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}
}  // namespace

SectorPool& SectorPool::instance() {
  static SectorPool* pool = new SectorPool;  // never destroyed: sectors may outlive static destruction order
  return *pool;
}

SectorBytes SectorPool::intern(std::vector<uint8_t>&& bytes) {
  const size_t h = hash_of(bytes);
  auto range = map_.equal_range(h);
  for (auto it = range.first; it != range.second; ++it) {
    if (*it->second.raw != bytes) continue;
    if (SectorBytes held = it->second.weak.lock()) return held;
  }
  auto* raw = new std::vector<uint8_t>(std::move(bytes));
  SectorBytes held(raw, [h](const std::vector<uint8_t>* b) {
    instance().forget(h, b);
    delete b;
  });
  map_.emplace(h, Entry{raw, held});
  ++count_;
  bytes_ += raw->size();
  return held;
}

void SectorPool::forget(size_t hash, const std::vector<uint8_t>* raw) {
  auto range = map_.equal_range(hash);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second.raw == raw) {
      map_.erase(it);
      --count_;
      bytes_ -= raw->size();
      return;
    }
  }
}

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

template <typename F>
void SparseStorage::change(uint8_t area, uint32_t index, F&& f) {
  auto it = sectors_[area].find(index);
  std::vector<uint8_t> copy = it == sectors_[area].end() ? std::vector<uint8_t>(sector_[area], erased_) : *it->second;
  f(copy.data());
  if (std::all_of(copy.begin(), copy.end(), [this](uint8_t b) { return b == erased_; })) {
    if (it != sectors_[area].end()) sectors_[area].erase(it);
    return;
  }
  SectorBytes shared = SectorPool::instance().intern(std::move(copy));
  if (it == sectors_[area].end()) {
    sectors_[area].emplace(index, std::move(shared));
  } else {
    it->second = std::move(shared);
  }
}

void SparseStorage::load(uint8_t area, uint32_t offset, uint8_t* dst, size_t len) const {
  pieces(area, offset, len, [&](uint32_t index, uint32_t within, size_t n, size_t done) {
    auto it = sectors_[area].find(index);
    if (it == sectors_[area].end()) {
      std::memset(dst + done, erased_, n);
    } else {
      std::memcpy(dst + done, it->second->data() + within, n);
    }
  });
}

void SparseStorage::store(uint8_t area, uint32_t offset, const uint8_t* src, size_t len) {
  pieces(area, offset, len, [&](uint32_t index, uint32_t within, size_t n, size_t done) {
    change(area, index, [&](uint8_t* sec) { std::memcpy(sec + within, src + done, n); });
  });
}

void SparseStorage::fill(uint8_t area, uint32_t offset, size_t len, uint8_t value) {
  pieces(area, offset, len, [&](uint32_t index, uint32_t within, size_t n, size_t) {
    auto it = sectors_[area].find(index);
    if (value == erased_ && n == sector_[area]) {
      if (it != sectors_[area].end()) sectors_[area].erase(it);
      return;
    }
    if (it == sectors_[area].end() && value == erased_) return;
    change(area, index, [&](uint8_t* sec) { std::memset(sec + within, value, n); });
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
    const uint8_t* p = it->second->data() + within;
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
