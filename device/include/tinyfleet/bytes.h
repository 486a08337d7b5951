// Little-endian field access for untrusted byte buffers. Callers check bounds before reading.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

namespace tinyfleet {

// Back to a default-constructed value, built in place: `x = T()` first builds the temporary on the stack,
// which for the core's large objects (Thresholds, DriftWindow, Manifest, ProgressRecord) dominated the
// worst-case stack. Placement new allocates nothing.
template <typename T>
void reset_in_place(T& x) {
  static_assert(std::is_trivially_destructible<T>::value, "no destructor runs");
  ::new (static_cast<void*>(&x)) T();
}

struct ByteView {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

inline uint16_t load_u16le(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
inline uint32_t load_u32le(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
inline uint64_t load_u64le(const uint8_t* p) {
  return static_cast<uint64_t>(load_u32le(p)) | (static_cast<uint64_t>(load_u32le(p + 4)) << 32);
}
inline void store_u16le(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void store_u32le(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void store_u64le(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

constexpr uint32_t align_up(uint32_t x, uint32_t a) { return (x + a - 1) / a * a; }

// Constant-time comparison (digests).
bool bytes_equal_ct(const uint8_t* a, const uint8_t* b, size_t n);

// CRC-32 (IEEE 802.3, reflected, init and final xor 0xFFFFFFFF), as zlib.crc32.
uint32_t crc32_ieee(const uint8_t* data, size_t len, uint32_t crc = 0);

}  // namespace tinyfleet
