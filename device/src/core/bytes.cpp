#include "tinyfleet/bytes.h"

namespace tinyfleet {

bool bytes_equal_ct(const uint8_t* a, const uint8_t* b, size_t n) {
  uint8_t diff = 0;
  for (size_t i = 0; i < n; ++i) diff = static_cast<uint8_t>(diff | (a[i] ^ b[i]));
  return diff == 0;
}

namespace {
// `size` bytes from src to dst; on a big-endian host a number's bytes are reversed on the way.
void copy_field(uint8_t* dst, const uint8_t* src, size_t size) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  std::memcpy(dst, src, size);
#else
  if (size == 2 || size == 4 || size == 8) {
    for (size_t i = 0; i < size; ++i) dst[i] = src[size - 1 - i];
  } else {
    std::memcpy(dst, src, size);
  }
#endif
}
}  // namespace

void copy_fields(uint8_t* wire, uint8_t* host, const WireField* fields, size_t count, bool to_wire) {
  for (size_t i = 0; i < count; ++i) {
    uint8_t* w = wire + fields[i].wire;
    uint8_t* h = host + fields[i].host;
    copy_field(to_wire ? w : h, to_wire ? h : w, fields[i].size);
  }
}

void encode_record(uint8_t* out, size_t len, const char* magic, const void* in, const WireField* fields,
                   size_t count) {
  std::memset(out, 0, len);
  std::memcpy(out, magic, 4);
  out[4] = 1;
  store_fields(out, in, fields, count);
}

// Bitwise CRC-32: no 1 KiB table in RAM or flash; metadata records are 112 bytes.
uint32_t crc32_ieee(const uint8_t* data, size_t len, uint32_t crc) {
  crc = ~crc;
  for (size_t i = 0; i < len; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

}  // namespace tinyfleet
