// Host check of a linked STM32L476 application image against the bootloader's own rule for starting a firmware
// component in place (stm32l4::firmware_vector_table): run by device/targets/run-qemu-tests.sh on the raw
// image (objcopy -O binary of stm32l4_app.elf) with the stm32l4 profile's firmware_offset.
// Usage: check_firmware_image <image.bin> <firmware offset in the bundle>
// Prints the vector table, initial stack pointer and reset handler; exits 1 if the bootloader would refuse it.
#include <cstdio>
#include <cstdlib>

#include "stm32l4_layout.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <image.bin> <firmware offset>\n", argv[0]);
    return 2;
  }
  std::FILE* f = std::fopen(argv[1], "rb");
  if (f == nullptr) {
    std::perror(argv[1]);
    return 2;
  }
  unsigned char head[8] = {};
  const size_t got = std::fread(head, 1, sizeof head, f);
  std::fseek(f, 0, SEEK_END);
  const long len = std::ftell(f);
  std::fclose(f);
  const auto word = [&](int i) {
    return static_cast<uint32_t>(head[i]) | static_cast<uint32_t>(head[i + 1]) << 8 |
           static_cast<uint32_t>(head[i + 2]) << 16 | static_cast<uint32_t>(head[i + 3]) << 24;
  };
  const uint32_t offset = static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 0));
  const uint32_t sp = word(0), reset = word(4);
  const uint32_t table = got == sizeof head && len > 0
                             ? tinyfleet::stm32l4::firmware_vector_table(offset, static_cast<uint32_t>(len), sp, reset)
                             : 0;
  std::printf("vector table 0x%08x, initial SP 0x%08x, reset handler 0x%08x, %ld B from bundle offset %u: %s\n",
              static_cast<unsigned>(table), static_cast<unsigned>(sp), static_cast<unsigned>(reset), len,
              static_cast<unsigned>(offset), table != 0 ? "the bootloader starts it" : "REFUSED by the bootloader");
  return table != 0 ? 0 : 1;
}
