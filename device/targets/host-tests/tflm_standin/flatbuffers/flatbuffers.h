// Stand-in for the FlatBuffers verifier TensorFlow Lite Micro builds with (see
// tensorflow/lite/c/common.h here): only the constructor the port calls.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace flatbuffers {

class Verifier {
 public:
  Verifier(const uint8_t* buf, size_t buf_len) : buf_(buf), len_(buf_len) {}
  const uint8_t* buf() const { return buf_; }
  size_t len() const { return len_; }

 private:
  const uint8_t* buf_;
  size_t len_;
};

}  // namespace flatbuffers
