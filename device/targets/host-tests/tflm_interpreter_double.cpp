// Definitions of the TFLite Micro stand-in declarations for the host tests (tflm_interpreter_double.h). No heap:
// the Cortex-M4 build links this file into the STM32 application image (device/targets/cortex-m/app); the
// helpers that return vectors are in tflm_double_bytes.cpp, for the host tests only.
#include "tflm_interpreter_double.h"

#include <cstring>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace tflmdouble {

StepClock* invoke_clock = nullptr;
int live_interpreters = 0;

namespace {

size_t align16(size_t n) { return (n + 15) & ~static_cast<size_t>(15); }

size_t element_size(TfLiteType t) {
  switch (t) {
    case kTfLiteInt8: case kTfLiteUInt8: return 1;
    case kTfLiteInt16: return 2;
    case kTfLiteFloat32: case kTfLiteInt32: return 4;
    default: return 0;
  }
}

size_t tensor_bytes(const DoubleTensor& t) {
  size_t n = element_size(t.type);
  for (uint8_t i = 0; i < t.rank; ++i) n *= static_cast<size_t>(t.dims[i]);
  return n;
}

DoubleModel read_model(const void* p) {
  DoubleModel m;
  std::memcpy(&m, p, sizeof m);
  return m;
}

}  // namespace

DoubleModel contract_model() {
  DoubleModel m;
  m.input.dims[0] = 8;
  m.output.dims[0] = 4;
  return m;
}

void write_output(const DoubleModel& m, const uint8_t* input, size_t n, uint8_t* out, size_t out_len) {
  uint32_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += input[i];
  for (size_t j = 0; j < out_len; ++j) out[j] = static_cast<uint8_t>(sum * (j + 1) + j + m.bias);
}


size_t arena_need(const DoubleModel& m) {
  return align16(m.persistent_bytes) + align16(tensor_bytes(m.input)) + align16(tensor_bytes(m.output));
}

}  // namespace tflmdouble

namespace tflite {

using tflmdouble::DoubleModel;

uint32_t Model::version() const { return tflmdouble::read_model(this).schema_version; }

const Model* GetModel(const void* buf) { return static_cast<const Model*>(buf); }

bool VerifyModelBuffer(flatbuffers::Verifier& verifier) {
  return verifier.len() >= sizeof(DoubleModel) && std::memcmp(verifier.buf(), "DBLM", 4) == 0;
}

MicroInterpreter::MicroInterpreter(const Model* model, const MicroOpResolver&, uint8_t* tensor_arena,
                                   size_t tensor_arena_size, MicroResourceVariables*, MicroProfilerInterface*, bool)
    : model_(model), arena_(tensor_arena), arena_size_(tensor_arena_size), dims_(), tensors_() {
  ++tflmdouble::live_interpreters;
}

MicroInterpreter::~MicroInterpreter() { --tflmdouble::live_interpreters; }

TfLiteStatus MicroInterpreter::AllocateTensors() {
  const DoubleModel m = tflmdouble::read_model(model_);
  const uintptr_t start = reinterpret_cast<uintptr_t>(arena_);
  const size_t skew = static_cast<size_t>(((start + 15) & ~static_cast<uintptr_t>(15)) - start);
  const size_t need = skew + tflmdouble::arena_need(m);
  if (arena_ == nullptr || need > arena_size_) return kTfLiteError;
  uint8_t* head = arena_ + skew;
  std::memset(head, 0xA5, tflmdouble::align16(m.persistent_bytes));  // the interpreter's own structures
  head += tflmdouble::align16(m.persistent_bytes);
  const tflmdouble::DoubleTensor* spec[2] = {&m.input, &m.output};
  for (int i = 0; i < 2; ++i) {
    dims_[i].size = spec[i]->rank;
    for (uint8_t d = 0; d < spec[i]->rank; ++d) dims_[i].data[d] = spec[i]->dims[d];
    tensors_[i].type = spec[i]->type;
    tensors_[i].dims = &dims_[i];
    tensors_[i].params = {spec[i]->scale, spec[i]->zero_point};
    tensors_[i].bytes = tflmdouble::tensor_bytes(*spec[i]);
    tensors_[i].data.data = head;
    head += tflmdouble::align16(tensors_[i].bytes);
  }
  used_ = need;
  allocated_ = true;
  return kTfLiteOk;
}

TfLiteStatus MicroInterpreter::Invoke() {
  const DoubleModel m = tflmdouble::read_model(model_);
  if (!allocated_) return kTfLiteError;
  if (tflmdouble::invoke_clock != nullptr) tflmdouble::invoke_clock->ms += m.invoke_ms;
  if (static_cast<int32_t>(invocations_++) == m.fail_invoke_at) return kTfLiteError;
  tflmdouble::write_output(m, tensors_[0].data.uint8, tensors_[0].bytes, tensors_[1].data.uint8, tensors_[1].bytes);
  return kTfLiteOk;
}

size_t MicroInterpreter::inputs_size() const { return tflmdouble::read_model(model_).inputs; }
size_t MicroInterpreter::outputs_size() const { return tflmdouble::read_model(model_).outputs; }
TfLiteTensor* MicroInterpreter::input(size_t index) { return index == 0 && allocated_ ? &tensors_[0] : nullptr; }
TfLiteTensor* MicroInterpreter::output(size_t index) { return index == 0 && allocated_ ? &tensors_[1] : nullptr; }
size_t MicroInterpreter::arena_used_bytes() const { return used_; }

}  // namespace tflite
