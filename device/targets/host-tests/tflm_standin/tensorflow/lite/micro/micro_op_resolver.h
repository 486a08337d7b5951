// Stand-in for TensorFlow Lite Micro's tensorflow/lite/micro/micro_op_resolver.h (see
// tensorflow/lite/c/common.h here): the op resolver is the application's (the ops its models use, e.g. a
// MicroMutableOpResolver); the port only passes it to the interpreter.
#pragma once

namespace tflite {

class MicroOpResolver {
 public:
  virtual ~MicroOpResolver() {}
};

}  // namespace tflite
