#include "semihost.h"

namespace tinyfleet::semihost {
namespace {

constexpr uint32_t kSysWrite0 = 0x04;
constexpr uint32_t kSysExitExtended = 0x20;
constexpr uint32_t kAdpStoppedApplicationExit = 0x20026;

uint32_t call(uint32_t op, const void* arg) {
  register uint32_t r0 asm("r0") = op;
  register const void* r1 asm("r1") = arg;
  asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

}  // namespace

void write(const char* text) { call(kSysWrite0, text); }

void write_u32(uint32_t value) {
  char buf[11];
  char* p = buf + sizeof buf - 1;
  *p = '\0';
  do {
    *--p = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  write(p);
}

void write_hex(const uint8_t* data, size_t len) {
  static const char kDigits[] = "0123456789abcdef";
  char buf[65];
  while (len > 0) {
    size_t n = len > 32 ? 32 : len;
    for (size_t i = 0; i < n; ++i) {
      buf[2 * i] = kDigits[data[i] >> 4];
      buf[2 * i + 1] = kDigits[data[i] & 15];
    }
    buf[2 * n] = '\0';
    write(buf);
    data += n;
    len -= n;
  }
}

void exit(uint32_t code) {
  const uint32_t block[2] = {kAdpStoppedApplicationExit, code};
  call(kSysExitExtended, block);
  for (;;) {
  }
}

}  // namespace tinyfleet::semihost
