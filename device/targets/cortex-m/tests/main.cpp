// The core's tests on the Cortex-M4 (QEMU mps2-an386 with semihosting): every registered test, in link
// order; exit status = failed tests.
#include "semihost.h"
#include "tests.h"

int main() {
  tftarget::platform_init();
  tinyfleet::semihost::write("tinyfleet core tests on " TINYFLEET_TEST_PLATFORM "\n");
  return tt::run_all();
}
