// The host tests' helpers around the interpreter double that return vectors (tflm_interpreter_double.h); apart
// from tflm_interpreter_double.cpp, which the Cortex-M4 build links into a heap-free image.
#include <cstring>

#include "tflm_interpreter_double.h"

namespace tflmdouble {

std::vector<uint8_t> model_bytes(const DoubleModel& m) {
  std::vector<uint8_t> b(sizeof m);
  std::memcpy(b.data(), &m, sizeof m);
  return b;
}

std::vector<uint8_t> expected_output(const DoubleModel& m, const uint8_t* input, size_t n, size_t out_len) {
  std::vector<uint8_t> out(out_len);
  write_output(m, input, n, out.data(), out_len);
  return out;
}

}  // namespace tflmdouble
