// The running bundle's extractor over the agent's ring, checked against the caller's input length first so
// that a short ring and a wrong model are told apart (NotFound, InvalidArgument).
#include "tinyfleet/model_input.h"

#include "tinyfleet/features.h"

namespace tinyfleet {

Status extract_model_input(const Agent& agent, uint8_t* out, size_t len) {
  const FeatureExtractorId id = agent.feature_extractor();
  const features::Shape shape = features::shape(id);
  if (shape.frames == 0 || len != shape.output_bytes()) return Status::InvalidArgument;
  RingWindow window;
  if (!agent.latest_window(shape.frames, window)) return Status::NotFound;
  // int8 features into the tensor's bytes: the model's input is int8 (the extractor's contract).
  return features::extract(id, window, reinterpret_cast<int8_t*>(out), len);
}

}  // namespace tinyfleet
