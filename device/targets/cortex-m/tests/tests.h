// The Cortex-M test program: its own tests here (registered with TT_TEST, tinytest.h) and the portable
// ones of device/tests/portable, run by main.cpp.
#pragma once

#include "tinytest.h"

#ifndef TINYFLEET_TEST_PLATFORM
#define TINYFLEET_TEST_PLATFORM "Cortex-M4"
#endif

namespace tftarget {
// What the platform needs before the tests (Cortex-M: mbedTLS's static pool; host: nothing).
void platform_init();
}  // namespace tftarget
