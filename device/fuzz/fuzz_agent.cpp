// libFuzzer target: Agent::on_message as a whole. A real Agent on the host port receives a sequence of
// events decoded from the input (every topic of the device and arbitrary ones, any payload, in any order,
// interleaved with connection changes, ticks, battery readings, acknowledgements, health results, samples
// and reboots); support/agent_driver.h gives the format and the invariants checked after every event.
#include <cstddef>
#include <cstdint>

#include "support/agent_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)fuzzagent::run(data, size);
  return 0;
}
