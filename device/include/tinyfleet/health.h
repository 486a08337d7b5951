// Trial-boot health check, model half: the bundle's feature extractor must be one this firmware has (else
// HealthFeatureExtractor, before the model runs); then replay the bundle's golden vectors (component type 5,
// read from the running bank) through the Inference port and require outputs identical to the byte, latency
// within max_latency_ms and arena high-water within peak_ram_bytes. The broker half (reachable within a timeout)
// is the agent's: it needs connection events.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/bundle_parser.h"
#include "tinyfleet/features.h"
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

// What the replay needs from a bundle's manifest and table (a few words instead of a whole BundleInfo).
struct HealthContract {
  bool has_vectors = false;  // the bundle has a health-vectors component
  // The manifest's feature_extractor_version as this firmware knows it: Unknown fails the check first.
  FeatureExtractorId feature_extractor = FeatureExtractorId::Unknown;
  uint32_t vectors_offset = 0;
  uint32_t vectors_length = 0;
  uint32_t input_bytes = 0;   // manifest input tensor size
  uint32_t output_bytes = 0;  // manifest output tensor size
  uint32_t max_latency_ms = 0;
  uint32_t peak_ram_bytes = 0;
};
HealthContract health_contract(const BundleInfo& info);

// Replays the health vectors stored in `bank` as `contract` locates them, using the caller's `scratch`
// (kHealthScratchLen bytes): the agent lends its prefix buffer, which is idle during a trial.
HealthOutcome run_health_vectors(Flash& flash, FlashArea bank, const HealthContract& contract, Inference& inference,
                                 uint8_t* scratch);

// The same with buffers of its own (for a shell that checks health outside the agent).
class HealthChecker {
 public:
  HealthOutcome run(Flash& flash, FlashArea bank, const BundleInfo& info, Inference& inference) {
    return run_health_vectors(flash, bank, health_contract(info), inference, scratch_);
  }

 private:
  uint8_t scratch_[kHealthScratchLen];
};

}  // namespace tinyfleet
