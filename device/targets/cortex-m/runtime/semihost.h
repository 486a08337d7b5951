// ARM semihosting (BKPT 0xAB on M-profile): console output and exit status through the debugger or QEMU
// (-semihosting). Only what the test images and the footprint image need; no newlib stdio, no heap.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tinyfleet::semihost {

void write(const char* text);                 // NUL-terminated, SYS_WRITE0
void write_u32(uint32_t value);               // decimal
void write_hex(const uint8_t* data, size_t len);
// SYS_EXIT_EXTENDED: QEMU exits with `code` as its own exit status. Never returns.
[[noreturn]] void exit(uint32_t code);

}  // namespace tinyfleet::semihost
