#include "tflm_inference.h"

#include <cstring>

#include "tensorflow/lite/schema/schema_generated.h"

namespace tinyfleet::tflm {

TfLiteType tflite_type(uint8_t dtype) {
  switch (dtype) {
    case 1: return kTfLiteInt8;
    case 2: return kTfLiteUInt8;
    case 3: return kTfLiteInt16;
    case 4: return kTfLiteFloat32;
    default: return kTfLiteNoType;
  }
}

LoadError check_tensor(const TfLiteTensor& t, const TensorContract& k, bool is_input) {
  if (t.type != tflite_type(k.dtype) || t.type == kTfLiteNoType) {
    return is_input ? LoadError::InputType : LoadError::OutputType;
  }
  bool same_shape = t.dims != nullptr && t.dims->size == static_cast<int>(k.rank);
  for (uint8_t i = 0; same_shape && i < k.rank; ++i) {
    same_shape = t.dims->data[i] >= 0 && static_cast<uint32_t>(t.dims->data[i]) == k.shape[i];
  }
  if (!same_shape || t.bytes != k.nbytes()) return is_input ? LoadError::InputShape : LoadError::OutputShape;
  // A float tensor carries no quantization; an integer one must be quantized as the contract says.
  if (t.type != kTfLiteFloat32 && (t.params.scale != k.scale || t.params.zero_point != k.zero_point)) {
    return is_input ? LoadError::InputQuantization : LoadError::OutputQuantization;
  }
  return LoadError::None;
}

Status TflmInference::fail(LoadError e, Status s) {
  unload();
  error_ = e;
  return s;
}

Status TflmInference::load(const uint8_t* model, size_t len, const Manifest& manifest) {
  unload();
  if (model == nullptr || len == 0) return fail(LoadError::NoModel, Status::NotFound);
  if (reinterpret_cast<uintptr_t>(model) % kModelAlignment != 0) {
    return fail(LoadError::Misaligned, Status::InvalidArgument);
  }
  flatbuffers::Verifier verifier(model, len);
  if (!tflite::VerifyModelBuffer(verifier)) return fail(LoadError::BadModel, Status::HealthCheckFailed);
  const tflite::Model* m = tflite::GetModel(model);
  if (m->version() != kTfliteSchemaVersion) return fail(LoadError::BadModel, Status::HealthCheckFailed);

  interpreter_ = new (storage_) tflite::MicroInterpreter(m, ops_, arena_, arena_len_);
  if (interpreter_->AllocateTensors() != kTfLiteOk) return fail(LoadError::AllocateFailed, Status::BufferTooSmall);
  if (interpreter_->inputs_size() != 1 || interpreter_->outputs_size() != 1) {
    return fail(LoadError::TensorCount, Status::HealthCheckFailed);
  }
  LoadError e = check_tensor(*interpreter_->input(0), manifest.input, true);
  if (e == LoadError::None) e = check_tensor(*interpreter_->output(0), manifest.output, false);
  if (e != LoadError::None) return fail(e, Status::HealthCheckFailed);
  const size_t used = interpreter_->arena_used_bytes();
  arena_used_ = used > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<uint32_t>(used);
  error_ = LoadError::None;
  return Status::Ok;
}

void TflmInference::unload() {
  if (interpreter_ != nullptr) interpreter_->~MicroInterpreter();
  interpreter_ = nullptr;
  arena_used_ = 0;
  error_ = LoadError::NoModel;
}

Status TflmInference::run(const uint8_t* input, size_t input_len, uint8_t* output, size_t output_len,
                          InferenceResult& result) {
  if (interpreter_ == nullptr) return Status::InvalidState;
  TfLiteTensor* in = interpreter_->input(0);
  TfLiteTensor* out = interpreter_->output(0);
  if (input_len != in->bytes || output_len != out->bytes) return Status::InvalidArgument;
  std::memcpy(in->data.data, input, input_len);
  const uint32_t start_ms = clock_.monotonic_ms();
  const TfLiteStatus invoked = interpreter_->Invoke();
  const uint32_t elapsed_ms = clock_.monotonic_ms() - start_ms;  // wraps: a difference only
  if (invoked != kTfLiteOk) return Status::HealthCheckFailed;
  std::memcpy(output, out->data.data, output_len);
  result.latency_us = elapsed_ms > 0xFFFFFFFFu / 1000u ? 0xFFFFFFFFu : elapsed_ms * 1000u;
  const size_t used = interpreter_->arena_used_bytes();
  result.arena_high_water = used > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<uint32_t>(used);
  return Status::Ok;
}

}  // namespace tinyfleet::tflm
