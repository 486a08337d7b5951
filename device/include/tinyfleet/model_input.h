// The device's ML path up to the model: the running bundle's feature extractor (its manifest's
// feature_extractor_version, Agent::feature_extractor) over the agent's calibrated-sample ring, read in place
// (Agent::latest_window), into the model's input tensor. What an application calls before Inference::run and
// Agent::on_inference; part of the tinyfleet_features library, not the core.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/agent.h"

namespace tinyfleet {

// Writes the model input for the ring's latest window into out[len] (len: the model's input tensor bytes).
// Ok; NotFound while the ring holds fewer frames than the extractor's window (out untouched);
// InvalidArgument (out untouched) if this firmware has no extractor of the running bundle's name, or len is
// not what that extractor writes (a model whose input contract is not the extractor's output).
Status extract_model_input(const Agent& agent, uint8_t* out, size_t len);

}  // namespace tinyfleet
