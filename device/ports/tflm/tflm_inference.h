// The Inference port over TensorFlow Lite Micro: one tflite::MicroInterpreter placed inside this object (no
// heap) over the caller's tensor arena, running the running bundle's model component in place.
//
// load() makes a model ready and checks it against the bundle's signed model contract (the manifest's
// input and output tensors) before the first inference: the flatbuffer verifies and has schema version 3,
// the arena holds every tensor (AllocateTensors), and there is exactly one input and one output tensor of
// the contract's element type, shape and quantization. The application feeds that input from the feature
// extractor and the thresholds read that output, so a model that disagrees with its contract is refused
// here rather than producing numbers nobody can interpret. run() copies the input in, invokes, copies the
// output out, and reports the latency (the port's Clock around Invoke) and the arena the interpreter used.
//
// Results the health check sees (every one except Ok becomes Reason::HealthInference in the trial's
// report; load_error() keeps which check failed, for the application's log):
//   run() before a successful load  -> InvalidState
//   input_len / output_len differ from the tensors' byte sizes -> InvalidArgument
//   Invoke() failed -> HealthCheckFailed
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"
#include "tinyfleet/bundle_parser.h"
#include "tinyfleet/ports.h"

namespace tinyfleet::tflm {

// Why no model is loaded: None while one is, NoModel before the first load() and after unload(), else the
// check the last load() failed.
enum class LoadError : uint8_t {
  None = 0,
  NoModel,          // no model bytes (the bundle has no model component)
  Misaligned,       // model bytes not 16-byte aligned (TFLM reads tensor data in place)
  BadModel,         // the flatbuffer does not verify, or its schema version is not 3
  AllocateFailed,   // AllocateTensors failed: the arena is too small for the model (or an op is missing)
  TensorCount,      // not exactly one input and one output tensor
  InputType,        // input element type differs from the contract's dtype
  InputShape,       // input dimensions differ from the contract's shape
  InputQuantization,
  OutputType,
  OutputShape,
  OutputQuantization,
};

// TFLite's flatbuffer schema version, the one every model TFLM runs carries.
constexpr uint32_t kTfliteSchemaVersion = 3;
// TFLM reads weights and constant tensors from the model buffer in place, with 16-byte aligned accesses.
constexpr uintptr_t kModelAlignment = 16;

// The contract's dtype (1 int8, 2 uint8, 3 int16, 4 float32) as a TFLite element type; kTfLiteNoType
// for any other code.
TfLiteType tflite_type(uint8_t dtype);

// Which contract check `t` fails (LoadError::None if none): element type, then shape, then quantization
// (scale and zero point exactly as the manifest carries them, which the bundle tool copies from the model).
LoadError check_tensor(const TfLiteTensor& t, const TensorContract& contract, bool is_input);

class TflmInference final : public Inference {
 public:
  // `ops` (the application's op resolver), `clock` and arena[arena_len] outlive this object.
  TflmInference(Clock& clock, const tflite::MicroOpResolver& ops, uint8_t* arena, size_t arena_len)
      : clock_(clock), ops_(ops), arena_(arena), arena_len_(arena_len) {}
  ~TflmInference() { unload(); }
  TflmInference(const TflmInference&) = delete;
  TflmInference& operator=(const TflmInference&) = delete;

  // Makes model[len] (which must outlive the loaded state: flash mapped in memory, or a copy in RAM) the one
  // run() executes, for the contract of `manifest`. Ok, or: NotFound (no model), InvalidArgument (misaligned),
  // HealthCheckFailed (bad model or contract mismatch), BufferTooSmall (AllocateTensors failed); after a
  // failure nothing is loaded and load_error() says why.
  Status load(const uint8_t* model, size_t len, const Manifest& manifest);
  void unload();
  bool loaded() const { return interpreter_ != nullptr; }
  LoadError load_error() const { return error_; }
  // The interpreter's arena use after AllocateTensors (0 when nothing is loaded).
  uint32_t arena_used() const { return arena_used_; }

  Status run(const uint8_t* input, size_t input_len, uint8_t* output, size_t output_len,
             InferenceResult& result) override;

 private:
  Status fail(LoadError e, Status s);

  Clock& clock_;
  const tflite::MicroOpResolver& ops_;
  uint8_t* arena_;
  size_t arena_len_;
  tflite::MicroInterpreter* interpreter_ = nullptr;  // points into storage_ while loaded
  LoadError error_ = LoadError::NoModel;
  uint32_t arena_used_ = 0;
  alignas(tflite::MicroInterpreter) unsigned char storage_[sizeof(tflite::MicroInterpreter)];
};

}  // namespace tinyfleet::tflm
