// Trial-boot health check, model half: replay the bundle's golden vectors (component type 5, read from
// the running bank) through the Inference port and require outputs identical to the byte, latency within
// max_latency_ms and arena high-water within peak_ram_bytes. The broker half (reachable within a timeout)
// is the agent's: it needs connection events.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/bundle_parser.h"
#include "tinyfleet/ports.h"
#include "tinyfleet/protocol.h"

// Largest input or output tensor (bytes) a health vector may have on this device.
#ifndef TINYFLEET_MAX_TENSOR_BYTES
#define TINYFLEET_MAX_TENSOR_BYTES 1024
#endif

namespace tinyfleet {

struct HealthOutcome {
  Reason reason = Reason::HealthInference;  // None = pass; failure until proven otherwise
  uint32_t detail0 = 0;
  uint32_t detail1 = 0;
  uint32_t vectors = 0;          // vectors replayed
  uint32_t max_latency_us = 0;   // largest latency seen
  uint32_t max_arena_bytes = 0;  // largest arena high-water seen
  bool passed() const { return reason == Reason::None; }
};

// Scratch a replay needs: one input and two output tensors (expected, actual).
constexpr size_t kHealthScratchLen = 3u * TINYFLEET_MAX_TENSOR_BYTES;

// Replays the health vectors stored in `bank` at component `vectors` of `info`, using the caller's
// `scratch` (kHealthScratchLen bytes): the agent lends its prefix buffer, which is idle during a trial.
HealthOutcome run_health_vectors(Flash& flash, FlashArea bank, const BundleInfo& info, Inference& inference,
                                 uint8_t* scratch);

// The same with buffers of its own (for a shell that checks health outside the agent).
class HealthChecker {
 public:
  HealthOutcome run(Flash& flash, FlashArea bank, const BundleInfo& info, Inference& inference) {
    return run_health_vectors(flash, bank, info, inference, scratch_);
  }

 private:
  uint8_t scratch_[kHealthScratchLen];
};

}  // namespace tinyfleet
