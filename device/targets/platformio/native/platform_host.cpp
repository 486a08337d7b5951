// Host test program: mbedTLS (Debian's libmbedcrypto) allocates from the libc heap, nothing to set up.
#include "tests.h"

namespace tftarget {
void platform_init() {}
}  // namespace tftarget
