// The semihosting console of the Cortex-M test images, on a host: stdout and the process exit status.
// Lets the same heap-free test program (device/targets/cortex-m/tests and device/tests/portable) run natively
// (PlatformIO `native`).
#include <cstdio>
#include <cstdlib>

#include "semihost.h"

namespace tinyfleet::semihost {

void write(const char* text) { std::fputs(text, stdout); }

void write_u32(uint32_t value) { std::printf("%lu", static_cast<unsigned long>(value)); }

void write_hex(const uint8_t* data, size_t len) {
  for (size_t i = 0; i < len; ++i) std::printf("%02x", data[i]);
}

void exit(uint32_t code) {
  std::fflush(stdout);
  std::exit(static_cast<int>(code > 255 ? 255 : code));
}

}  // namespace tinyfleet::semihost
