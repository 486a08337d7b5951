// Stand-in for TensorFlow Lite's generated schema header (see tensorflow/lite/c/common.h here): the model's
// root table, its schema version and the buffer verifier, as the port calls them.
#pragma once

#include <stdint.h>

#include "flatbuffers/flatbuffers.h"

namespace tflite {

class Model {
 public:
  uint32_t version() const;
};

const Model* GetModel(const void* buf);
bool VerifyModelBuffer(flatbuffers::Verifier& verifier);

}  // namespace tflite
