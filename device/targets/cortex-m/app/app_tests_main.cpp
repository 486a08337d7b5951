// The STM32L476 application loop's tests on the Cortex-M4 (QEMU mps2-an386 with semihosting); exit status =
// failed tests.
#include "mbedtls_pool.h"
#include "semihost.h"
#include "tinytest.h"

int main() {
  tinyfleet::cortexm::mbedtls_pool_init();
  tinyfleet::semihost::write("tinyfleet STM32L476 application loop tests on Cortex-M4\n");
  return tt::run_all();
}
