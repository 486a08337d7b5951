// The model TflmInference runs: the model component of the running bundle, read from the bank boot
// selection chose, as the agent reads that bundle's calibration and thresholds at boot.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/boot.h"
#include "tinyfleet/bundle_parser.h"
#include "tinyfleet/ports.h"
#include "tflm_inference.h"

namespace tinyfleet::tflm {

// Parses the prefix of the bank `boot` runs into `table` through scratch[scratch_len] (at least the
// prefix's length), checks its digest against the metadata's descriptor of that bank (as the agent's
// RunningBundle does), and reads the model component into model[cap]: its length, or 0 if the prefix is
// not the metadata's image, the bundle has no model, the model is larger than cap or a read fails. `model`
// should be 16-byte aligned (TflmInference::load refuses it otherwise). On success `table.manifest` is the
// model's contract, for TflmInference::load.
size_t read_running_model(Flash& flash, Crypto& crypto, const BootDecision& boot, uint8_t* scratch, size_t scratch_len,
                          BundleInfo& table, uint8_t* model, size_t cap);

// What a shell does after boot selection and before the agent's on_boot (whose trial health check runs the
// model): read_running_model, then inference.load with the bundle's manifest. Ok; NotFound when no model
// could be read; otherwise load()'s result (inference.load_error() says which check failed). Whatever it
// returns, `inference` runs only a model that passed every check: a trial without one fails its health
// check (Reason::HealthInference) and is reverted.
Status load_running_model(TflmInference& inference, Flash& flash, Crypto& crypto, const BootDecision& boot,
                          uint8_t* scratch, size_t scratch_len, BundleInfo& table, uint8_t* model, size_t cap);

}  // namespace tinyfleet::tflm
