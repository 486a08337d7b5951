// The host test double behind the TFLite Micro stand-in headers (tflm_standin/): TFLM's source is not on
// this machine, so device/ports/tflm is tested against an interpreter that behaves like TFLM's where the
// port depends on it, and nothing more. Its "model" is not a .tflite flatbuffer but a DoubleModel record
// (the test's own format) that says what the interpreter finds in it: tensor types, shapes and
// quantization, the arena its own structures take, and when Invoke fails. Like TFLM it places its tensors
// in the caller's arena from a 16-byte aligned start and fails AllocateTensors when they do not fit,
// reports the arena it placed as arena_used_bytes(), and computes outputs only in Invoke: output[j] =
// sum(input bytes) * (j + 1) + j + bias (mod 256), as device/tests/agent_harness.h's model does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensorflow/lite/c/common.h"
#include "tinyfleet/ports.h"

namespace tflmdouble {

struct DoubleTensor {
  TfLiteType type = kTfLiteInt8;
  uint8_t rank = 1;
  int32_t dims[6] = {};
  float scale = 0.0078125f;
  int32_t zero_point = -3;
};

struct DoubleModel {
  char magic[4] = {'D', 'B', 'L', 'M'};  // VerifyModelBuffer checks it and the length
  uint32_t schema_version = 3;
  uint32_t inputs = 1;
  uint32_t outputs = 1;
  DoubleTensor input;
  DoubleTensor output;
  uint32_t persistent_bytes = 1024;  // arena the interpreter's own structures take, before the tensors
  int32_t fail_invoke_at = -1;       // this Invoke (0-based, per interpreter) returns kTfLiteError
  uint32_t invoke_ms = 3;            // time one Invoke takes on the clock `invoke_clock` points at
  uint8_t bias = 0;                  // added to every output byte
};

// A model with the contract of tests/support's bundle manifest: int8 [8] in, int8 [4] out, scale
// 0.0078125, zero point -3.
DoubleModel contract_model();
std::vector<uint8_t> model_bytes(const DoubleModel& m);
// What Invoke writes for `input`, into out[out_len] (no heap: the double links into Cortex-M images too).
void write_output(const DoubleModel& m, const uint8_t* input, size_t n, uint8_t* out, size_t out_len);
// The same, as a vector, for the host tests.
std::vector<uint8_t> expected_output(const DoubleModel& m, const uint8_t* input, size_t n, size_t out_len);
// Arena bytes AllocateTensors places for `m` from a 16-byte aligned arena start.
size_t arena_need(const DoubleModel& m);

// A clock the test reads, advanced by each Invoke by the model's invoke_ms.
struct StepClock final : tinyfleet::Clock {
  uint32_t ms = 1000;
  uint64_t unix_seconds() override { return 1790000000; }
  uint32_t monotonic_ms() override { return ms; }
};
extern StepClock* invoke_clock;
extern int live_interpreters;  // constructed minus destroyed

}  // namespace tflmdouble
