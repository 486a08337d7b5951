// Little-endian field access for untrusted byte buffers. Callers check bounds before reading.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
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

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
// A little-endian field is the value's own bytes: a fixed-size memcpy, which the compiler makes one load or
// store (unaligned where the target allows it) instead of a loop of byte accesses or a call.
template <typename T>
inline T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
inline void store_le(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}
#else
template <typename T>
inline T load_le(const uint8_t* p) {
  T v = 0;
  for (size_t i = sizeof v; i-- > 0;) v = static_cast<T>((v << 8) | p[i]);
  return v;
}
template <typename T>
inline void store_le(uint8_t* p, T v) {
  for (size_t i = 0; i < sizeof v; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
#endif

inline uint16_t load_u16le(const uint8_t* p) { return load_le<uint16_t>(p); }
inline uint32_t load_u32le(const uint8_t* p) { return load_le<uint32_t>(p); }
inline uint64_t load_u64le(const uint8_t* p) { return load_le<uint64_t>(p); }
inline void store_u16le(uint8_t* p, uint16_t v) { store_le(p, v); }
inline void store_u32le(uint8_t* p, uint32_t v) { store_le(p, v); }
inline void store_u64le(uint8_t* p, uint64_t v) { store_le(p, v); }

constexpr uint32_t align_up(uint32_t x, uint32_t a) { return (x + a - 1) / a * a; }

// One field of a fixed-layout record: `size` bytes at `wire` in the message, the value at `host` in the
// struct. Sizes 2, 4 and 8 are little-endian numbers of that size; any other size is bytes as they are.
// Encoders and decoders walk a table of these instead of a load and store per field.
struct WireField {
  uint8_t wire;
  uint8_t host;
  uint8_t size;
};
// Copies each field from the struct at `host` to the message at `wire` (to_wire), or back.
void copy_fields(uint8_t* wire, uint8_t* host, const WireField* fields, size_t count, bool to_wire);
inline void store_fields(uint8_t* out, const void* in, const WireField* fields, size_t count) {
  copy_fields(out, static_cast<uint8_t*>(const_cast<void*>(in)), fields, count, true);
}
inline void load_fields(void* out, const uint8_t* in, const WireField* fields, size_t count) {
  copy_fields(const_cast<uint8_t*>(in), static_cast<uint8_t*>(out), fields, count, false);
}

// A record's start: `len` zero bytes, then the 4-byte magic and format 1 over the first five, then each field.
void encode_record(uint8_t* out, size_t len, const char* magic, const void* in, const WireField* fields,
                   size_t count);

// Constant-time comparison (digests).
bool bytes_equal_ct(const uint8_t* a, const uint8_t* b, size_t n);

// CRC-32 (IEEE 802.3, reflected, init and final xor 0xFFFFFFFF), as zlib.crc32.
uint32_t crc32_ieee(const uint8_t* data, size_t len, uint32_t crc = 0);

}  // namespace tinyfleet
