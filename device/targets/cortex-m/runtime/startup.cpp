// Reset handler and vector table for the Cortex-M4 images: copy .data, zero .bss, run the static
// constructors, call main(), report its result through semihosting. The image never returns from main to
// a libc exit(), so static destructors are never registered (atexit below) and never run.
#include <cstdint>
#include <cstring>

#include "semihost.h"

extern "C" {
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern void (*__preinit_array_start[])(), (*__preinit_array_end[])();
extern void (*__init_array_start[])(), (*__init_array_end[])();

int main();

[[noreturn]] void Reset_Handler() {
#if defined(__ARM_FP)
  // Hard-float build: grant full access to the FPU (CP10, CP11) before any floating-point instruction.
  *reinterpret_cast<volatile uint32_t*>(0xE000ED88u) |= 0xFu << 20;
  asm volatile("dsb\nisb" ::: "memory");
#endif
  std::memcpy(&_sdata, &_sidata, static_cast<size_t>(&_edata - &_sdata) * sizeof(uint32_t));
  std::memset(&_sbss, 0, static_cast<size_t>(&_ebss - &_sbss) * sizeof(uint32_t));
  for (auto f = __preinit_array_start; f != __preinit_array_end; ++f) (*f)();
  for (auto f = __init_array_start; f != __init_array_end; ++f) (*f)();
  tinyfleet::semihost::exit(static_cast<uint32_t>(main()));
}

// Exit status 0xF9..0xFE tells which fault stopped the program (QEMU's exit status). The handlers are weak:
// a port defines its own where the hardware needs one (device/ports/stm32/stm32l4_nmi.cpp).
[[noreturn]] static void fault(const char* what, uint32_t code) {
  tinyfleet::semihost::write(what);
  tinyfleet::semihost::exit(code);
}
[[noreturn]] __attribute__((weak)) void NMI_Handler() { fault("\nNMI\n", 0xFA); }
[[noreturn]] __attribute__((weak)) void HardFault_Handler() { fault("\nHardFault\n", 0xFB); }
[[noreturn]] __attribute__((weak)) void MemManage_Handler() { fault("\nMemManage fault\n", 0xFC); }
[[noreturn]] __attribute__((weak)) void BusFault_Handler() { fault("\nBusFault\n", 0xFD); }
[[noreturn]] __attribute__((weak)) void UsageFault_Handler() { fault("\nUsageFault\n", 0xFE); }
[[noreturn]] __attribute__((weak)) void Default_Handler() { fault("\nunexpected interrupt\n", 0xF9); }

// A pure virtual call is a bug; no exception runtime is linked.
[[noreturn]] void __cxa_pure_virtual() { fault("\npure virtual call\n", 0xF8); }
int atexit(void (*)()) { return 0; }
void* __dso_handle = nullptr;

using Handler = void (*)();
__attribute__((section(".isr_vector"), used)) const Handler g_vectors[16] = {
    reinterpret_cast<Handler>(&_estack),
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    Default_Handler,  // SVCall
    Default_Handler,  // DebugMonitor
    nullptr,
    Default_Handler,  // PendSV
    Default_Handler,  // SysTick
};
}
