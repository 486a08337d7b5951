// Stand-in for TensorFlow Lite Micro's tensorflow/lite/micro/micro_interpreter.h (see
// tensorflow/lite/c/common.h here): the constructor and the members the port calls, with TFLM's
// signatures. The private members are the host test double's (test_tflm_interpreter_double.cpp defines
// the functions); the real class has its own, and the port places it with sizeof/alignof from whichever
// header it is compiled against.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace tflite {

class MicroResourceVariables;
class MicroProfilerInterface;

class MicroInterpreter {
 public:
  MicroInterpreter(const Model* model, const MicroOpResolver& op_resolver, uint8_t* tensor_arena,
                   size_t tensor_arena_size, MicroResourceVariables* resource_variables = nullptr,
                   MicroProfilerInterface* profiler = nullptr, bool preserve_all_tensors = false);
  ~MicroInterpreter();
  MicroInterpreter(const MicroInterpreter&) = delete;
  MicroInterpreter& operator=(const MicroInterpreter&) = delete;

  TfLiteStatus AllocateTensors();
  TfLiteStatus Invoke();
  size_t inputs_size() const;
  size_t outputs_size() const;
  TfLiteTensor* input(size_t index);
  TfLiteTensor* output(size_t index);
  size_t arena_used_bytes() const;

 private:
  const Model* model_;
  uint8_t* arena_;
  size_t arena_size_;
  size_t used_ = 0;
  bool allocated_ = false;
  uint32_t invocations_ = 0;
  TfLiteIntArray dims_[2];
  TfLiteTensor tensors_[2];  // input, output
};

}  // namespace tflite
