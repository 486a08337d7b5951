// Verdicts of tests/vectors bundles through the StreamVerifier (test_vectors.cpp), shared with other tests.
#pragma once

#include <cstddef>

#include "tinyfleet/stream_verifier.h"
#include "vectors_data.h"

namespace tftarget {

// The policy of vector `v` (its trusted keys written into `keys`).
tinyfleet::VerifyPolicy policy_for(const tfvec::Vector& v, tinyfleet::TrustedKey (&keys)[4]);
// The verdict of feeding `v` in chunks of `chunk` bytes.
tinyfleet::Status verdict(const tfvec::Vector& v, const tinyfleet::VerifyPolicy& policy, size_t chunk);

}  // namespace tftarget
