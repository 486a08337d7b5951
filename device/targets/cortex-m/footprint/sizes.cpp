// sizeof() of the core's RAM-holding types as compiled for the target, read back by bench/footprint.py
// from this object's symbol sizes (arm-none-eabi-nm -S). This object is never linked into an image.
#include "tinyfleet/agent.h"
#include "tinyfleet/stream_verifier.h"

#define TINYFLEET_SIZEOF(name, type) \
  extern "C" {                       \
  char tinyfleet_sizeof_##name[sizeof(type)] = {}; \
  }

TINYFLEET_SIZEOF(Agent, tinyfleet::Agent)
TINYFLEET_SIZEOF(BootSelector, tinyfleet::BootSelector)
TINYFLEET_SIZEOF(BankWriter, tinyfleet::BankWriter)
TINYFLEET_SIZEOF(ProgressStore, tinyfleet::ProgressStore)
TINYFLEET_SIZEOF(ProgressRecord, tinyfleet::ProgressRecord)
TINYFLEET_SIZEOF(HealthChecker, tinyfleet::HealthChecker)
TINYFLEET_SIZEOF(DriftWindow, tinyfleet::DriftWindow)
TINYFLEET_SIZEOF(SampleRing, tinyfleet::SampleRing)
TINYFLEET_SIZEOF(BundleInfo, tinyfleet::BundleInfo)
TINYFLEET_SIZEOF(Action, tinyfleet::Action)
TINYFLEET_SIZEOF(StreamVerifier, tinyfleet::StreamVerifier)
TINYFLEET_SIZEOF(PrefixBuffer, uint8_t[TINYFLEET_PREFIX_BUFFER_SIZE])
