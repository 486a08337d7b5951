// How the STM32L476 flash driver reaches the hardware: 32-bit register accesses and reads of the
// memory-mapped flash array. On the MCU it is McuBus (volatile accesses at the RM0351 addresses); the host
// tests give the driver a model of the flash controller instead (device/targets/host-tests).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tinyfleet::stm32l4 {

class Bus {
 public:
  virtual uint32_t read32(uint32_t address) = 0;
  virtual void write32(uint32_t address, uint32_t value) = 0;
  virtual void read(uint32_t address, uint8_t* dst, size_t len) = 0;  // the flash array, as the CPU sees it

 protected:
  ~Bus() = default;
};

class McuBus final : public Bus {
 public:
  uint32_t read32(uint32_t address) override { return *reinterpret_cast<volatile uint32_t*>(address); }
  void write32(uint32_t address, uint32_t value) override { *reinterpret_cast<volatile uint32_t*>(address) = value; }
  void read(uint32_t address, uint8_t* dst, size_t len) override {
    std::memcpy(dst, reinterpret_cast<const uint8_t*>(address), len);
  }
};

}  // namespace tinyfleet::stm32l4
