// The TFLite Micro Inference port (device/ports/tflm) on the host, against the stand-in TFLM headers and
// the interpreter double of tflm_interpreter_double.h (TFLM's source is not on this machine). What is
// tested is the port's own logic: the model read from the running bundle, the checks against the signed
// model contract, arena sizing, latency from the clock around Invoke, the high-water from the interpreter,
// and what each failure becomes in the trial's health check (device/src/core/health.cpp, run for real over
// a signed bundle in RAM-backed flash).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "mbedtls_crypto.h"
#include "ram_flash.h"
#include "running_model.h"
#include "support/bundle_builder.h"
#include "tflm_inference.h"
#include "tflm_interpreter_double.h"
#include "tinyfleet/health.h"

using namespace tinyfleet;
using tflmdouble::DoubleModel;
using tinyfleet::tflm::LoadError;
using tinyfleet::tflm::TflmInference;

namespace {

using Bytes = std::vector<uint8_t>;

struct Ops final : tflite::MicroOpResolver {};

// The contract of tests/support's manifest (int8 [8] -> int8 [4], max latency 50 ms, peak RAM 20,000 B).
Manifest contract() {
  BundleInfo info;
  const Bytes b = tftest::build_bundle(tftest::small_spec(1), nullptr);
  EXPECT_EQ(parse_prefix(b.data(), b.size(), info), Status::Ok);
  return info.manifest;
}

struct Port : ::testing::Test {
  tflmdouble::StepClock clock;
  Ops ops;
  alignas(16) uint8_t arena[32768];
  alignas(16) uint8_t model[256];
  Manifest manifest = contract();

  void SetUp() override { tflmdouble::invoke_clock = &clock; }
  void TearDown() override {
    tflmdouble::invoke_clock = nullptr;
    EXPECT_EQ(tflmdouble::live_interpreters, 0);
  }
  const uint8_t* place(const DoubleModel& m) {
    const Bytes b = tflmdouble::model_bytes(m);
    std::memcpy(model, b.data(), b.size());
    return model;
  }
  Status load(TflmInference& port, const DoubleModel& m) { return port.load(place(m), sizeof m, manifest); }
};

const Bytes kInput = {1, 2, 3, 4, 250, 6, 7, 8};

}  // namespace

TEST_F(Port, RunsTheModelAndReportsItsLatencyAndArena) {
  TflmInference port(clock, ops, arena, sizeof arena);
  DoubleModel m = tflmdouble::contract_model();
  m.invoke_ms = 7;
  ASSERT_EQ(load(port, m), Status::Ok);
  EXPECT_EQ(port.load_error(), LoadError::None);
  EXPECT_EQ(port.arena_used(), tflmdouble::arena_need(m));
  EXPECT_EQ(port.arena_used(), 1024u + 16u + 16u);
  uint8_t out[4];
  InferenceResult r;
  ASSERT_EQ(port.run(kInput.data(), kInput.size(), out, sizeof out, r), Status::Ok);
  EXPECT_EQ(Bytes(out, out + 4), tflmdouble::expected_output(m, kInput.data(), kInput.size(), 4));
  EXPECT_EQ(r.latency_us, 7000u);
  EXPECT_EQ(r.arena_high_water, 1056u);
}

TEST_F(Port, LatencyIsTheClockAroundInvokeAcrossAWrap) {
  TflmInference port(clock, ops, arena, sizeof arena);
  DoubleModel m = tflmdouble::contract_model();
  m.invoke_ms = 12;
  ASSERT_EQ(load(port, m), Status::Ok);
  clock.ms = 0xFFFFFFFAu;  // wraps during Invoke
  uint8_t out[4];
  InferenceResult r;
  ASSERT_EQ(port.run(kInput.data(), kInput.size(), out, sizeof out, r), Status::Ok);
  EXPECT_EQ(r.latency_us, 12000u);
  m.invoke_ms = 0;  // faster than the clock's millisecond
  ASSERT_EQ(load(port, m), Status::Ok);
  ASSERT_EQ(port.run(kInput.data(), kInput.size(), out, sizeof out, r), Status::Ok);
  EXPECT_EQ(r.latency_us, 0u);
  m.invoke_ms = 5000000;  // 5,000 s: more microseconds than 32 bits hold, reported as the largest value
  ASSERT_EQ(load(port, m), Status::Ok);
  ASSERT_EQ(port.run(kInput.data(), kInput.size(), out, sizeof out, r), Status::Ok);
  EXPECT_EQ(r.latency_us, 0xFFFFFFFFu);
}

TEST_F(Port, AnArenaOneByteShortOfWhatTheInterpreterPlacesIsRefused) {
  const DoubleModel m = tflmdouble::contract_model();
  const size_t need = tflmdouble::arena_need(m);
  TflmInference short_port(clock, ops, arena, need - 1);
  EXPECT_EQ(load(short_port, m), Status::BufferTooSmall);
  EXPECT_EQ(short_port.load_error(), LoadError::AllocateFailed);
  EXPECT_FALSE(short_port.loaded());
  EXPECT_EQ(short_port.arena_used(), 0u);
  uint8_t out[4];
  InferenceResult r;
  EXPECT_EQ(short_port.run(kInput.data(), kInput.size(), out, sizeof out, r), Status::InvalidState);

  TflmInference exact_port(clock, ops, arena, need);
  EXPECT_EQ(load(exact_port, m), Status::Ok);
  EXPECT_EQ(exact_port.arena_used(), need);
  // The tensors live in the caller's arena: the input is copied there before Invoke.
  ASSERT_EQ(exact_port.run(kInput.data(), kInput.size(), out, sizeof out, r), Status::Ok);
  EXPECT_EQ(std::memcmp(arena + 1024, kInput.data(), kInput.size()), 0);
}

TEST_F(Port, AModelThatBreaksItsContractIsRefusedNamingTheCheck) {
  struct Case {
    const char* what;
    void (*edit)(DoubleModel&);
    LoadError error;
  };
  const Case cases[] = {
      {"int16 input", [](DoubleModel& m) { m.input.type = kTfLiteInt16; }, LoadError::InputType},
      {"float input", [](DoubleModel& m) { m.input.type = kTfLiteFloat32; }, LoadError::InputType},
      {"rank-2 input", [](DoubleModel& m) { m.input.rank = 2; m.input.dims[0] = 1; m.input.dims[1] = 8; },
       LoadError::InputShape},
      {"9 inputs", [](DoubleModel& m) { m.input.dims[0] = 9; }, LoadError::InputShape},
      {"input scale", [](DoubleModel& m) { m.input.scale = 0.0078126f; }, LoadError::InputQuantization},
      {"input zero point", [](DoubleModel& m) { m.input.zero_point = -2; }, LoadError::InputQuantization},
      {"uint8 output", [](DoubleModel& m) { m.output.type = kTfLiteUInt8; }, LoadError::OutputType},
      {"5 outputs", [](DoubleModel& m) { m.output.dims[0] = 5; }, LoadError::OutputShape},
      {"output zero point", [](DoubleModel& m) { m.output.zero_point = 0; }, LoadError::OutputQuantization},
      {"two inputs", [](DoubleModel& m) { m.inputs = 2; }, LoadError::TensorCount},
      {"no output", [](DoubleModel& m) { m.outputs = 0; }, LoadError::TensorCount},
      {"schema version 2", [](DoubleModel& m) { m.schema_version = 2; }, LoadError::BadModel},
      {"not a model", [](DoubleModel& m) { m.magic[0] = 'X'; }, LoadError::BadModel},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    TflmInference port(clock, ops, arena, sizeof arena);
    ASSERT_EQ(load(port, tflmdouble::contract_model()), Status::Ok);  // a good model first: it is dropped
    DoubleModel m = tflmdouble::contract_model();
    c.edit(m);
    EXPECT_EQ(load(port, m), Status::HealthCheckFailed);
    EXPECT_EQ(port.load_error(), c.error);
    EXPECT_FALSE(port.loaded());
    EXPECT_EQ(tflmdouble::live_interpreters, 0);
    uint8_t out[4];
    InferenceResult r;
    EXPECT_EQ(port.run(kInput.data(), kInput.size(), out, sizeof out, r), Status::InvalidState);
  }
}

TEST_F(Port, ModelBytesMustBeThereWholeAndAligned) {
  TflmInference port(clock, ops, arena, sizeof arena);
  EXPECT_EQ(port.load(nullptr, 0, manifest), Status::NotFound);
  EXPECT_EQ(port.load_error(), LoadError::NoModel);
  const DoubleModel m = tflmdouble::contract_model();
  place(m);
  EXPECT_EQ(port.load(model, sizeof m - 1, manifest), Status::HealthCheckFailed);  // truncated
  EXPECT_EQ(port.load_error(), LoadError::BadModel);
  std::memmove(model + 4, model, sizeof m);
  EXPECT_EQ(port.load(model + 4, sizeof m, manifest), Status::InvalidArgument);
  EXPECT_EQ(port.load_error(), LoadError::Misaligned);
  EXPECT_FALSE(port.loaded());
}

TEST_F(Port, AnInvokeErrorFailsThatRunOnly) {
  TflmInference port(clock, ops, arena, sizeof arena);
  DoubleModel m = tflmdouble::contract_model();
  m.fail_invoke_at = 1;
  ASSERT_EQ(load(port, m), Status::Ok);
  uint8_t out[4];
  InferenceResult r;
  EXPECT_EQ(port.run(kInput.data(), kInput.size(), out, sizeof out, r), Status::Ok);
  EXPECT_EQ(port.run(kInput.data(), kInput.size(), out, sizeof out, r), Status::HealthCheckFailed);
  EXPECT_EQ(port.run(kInput.data(), kInput.size(), out, sizeof out, r), Status::Ok);
}

TEST_F(Port, TensorLengthsOtherThanTheModelsAreCallerErrors) {
  TflmInference port(clock, ops, arena, sizeof arena);
  ASSERT_EQ(load(port, tflmdouble::contract_model()), Status::Ok);
  uint8_t out[5];
  InferenceResult r;
  EXPECT_EQ(port.run(kInput.data(), 7, out, 4, r), Status::InvalidArgument);
  EXPECT_EQ(port.run(kInput.data(), 8, out, 5, r), Status::InvalidArgument);
  EXPECT_EQ(port.run(kInput.data(), 8, out, 4, r), Status::Ok);
}

TEST_F(Port, LoadingAgainReplacesTheInterpreterAndUnloadEndsIt) {
  TflmInference port(clock, ops, arena, sizeof arena);
  DoubleModel m = tflmdouble::contract_model();
  ASSERT_EQ(load(port, m), Status::Ok);
  m.persistent_bytes = 4000;
  ASSERT_EQ(load(port, m), Status::Ok);
  EXPECT_EQ(tflmdouble::live_interpreters, 1);
  EXPECT_EQ(port.arena_used(), 4000u + 32u);
  port.unload();
  EXPECT_EQ(tflmdouble::live_interpreters, 0);
  EXPECT_EQ(port.arena_used(), 0u);
  EXPECT_EQ(port.load_error(), LoadError::NoModel);
}

TEST(TflmContract, FloatTensorsCarryNoQuantizationAndUnknownDtypesMatchNothing) {
  TensorContract k;
  k.rank = 2;
  k.shape[0] = 1;
  k.shape[1] = 3;
  k.dtype = 4;
  TfLiteIntArray dims{2, {1, 3}};
  TfLiteTensor t{};
  t.type = kTfLiteFloat32;
  t.dims = &dims;
  t.bytes = 12;
  EXPECT_EQ(tflm::check_tensor(t, k, true), LoadError::None);
  k.dtype = 9;  // no such contract dtype
  t.type = kTfLiteNoType;
  EXPECT_EQ(tflm::check_tensor(t, k, false), LoadError::OutputType);
  k.dtype = 4;
  t.type = kTfLiteFloat32;
  dims.data[1] = -1;  // a dynamic dimension never matches a contract
  EXPECT_EQ(tflm::check_tensor(t, k, true), LoadError::InputShape);
  EXPECT_EQ(tflm::tflite_type(1), kTfLiteInt8);
  EXPECT_EQ(tflm::tflite_type(2), kTfLiteUInt8);
  EXPECT_EQ(tflm::tflite_type(3), kTfLiteInt16);
  EXPECT_EQ(tflm::tflite_type(0), kTfLiteNoType);
}

// --- the model from the running bundle, through the trial's health check --------------------------------

namespace {

// A signed bundle whose model component is `m` and whose health vectors come from `vectors_model`, in bank
// 0 of RAM-backed flash, with the metadata's descriptor of it.
struct RunningDevice {
  uint8_t bank0[16384], bank1[1024], meta0[256], meta1[256];
  ram::RamArea areas[kFlashAreaCount];
  ram::RamFlash flash;
  host::MbedtlsCrypto crypto;
  tftest::TestSigner signer{"tflm-port-tests"};
  BootDecision boot;  // bank 0, as boot selection would decide it
  Bytes bundle;

  RunningDevice(const DoubleModel& m, const DoubleModel& vectors_model, int count = 6)
      : areas{{bank0, sizeof bank0, 1024}, {bank1, sizeof bank1, 1024}, {meta0, 256, 256}, {meta1, 256, 256},
              {nullptr, 0, 0}},
        flash(areas, 8, 0xFF) {
    flash.erase_all();
    tftest::BundleSpec s = tftest::small_spec(5);
    s.payloads[1] = tflmdouble::model_bytes(m);
    s.payloads[4] = vectors(vectors_model, count);
    bundle = tftest::build_bundle(s, &signer);
    Bytes padded = bundle;
    padded.resize((bundle.size() + 7) / 8 * 8, 0xFF);
    EXPECT_EQ(flash.write(FlashArea::Bank0, 0, padded.data(), padded.size()), Status::Ok);
    BundleInfo info;
    EXPECT_EQ(parse_prefix(bundle.data(), bundle.size(), info), Status::Ok);
    ImageDescriptor& image = boot.record.images[0];
    image.total_len = info.header.total_len;
    image.security_counter = info.manifest.security_counter;
    sha256(crypto, bundle.data(), info.header.payload_offset, image.prefix_sha256);
  }

  static Bytes vectors(const DoubleModel& m, int count) {
    Bytes v = {'T', 'F', 'H', 'V', 1, 0, static_cast<uint8_t>(count), 0, 8, 0, 0, 0, 4, 0, 0, 0};
    for (int k = 0; k < count; ++k) {
      const Bytes in = tftest::pattern(8, 40u + static_cast<uint32_t>(k));
      const Bytes out = tflmdouble::expected_output(m, in.data(), in.size(), 4);
      v.insert(v.end(), in.begin(), in.end());
      v.insert(v.end(), out.begin(), out.end());
    }
    return v;
  }
};

struct Trial : ::testing::Test {
  tflmdouble::StepClock clock;
  Ops ops;
  alignas(16) uint8_t arena[32768];
  alignas(16) uint8_t model[512];
  uint8_t scratch[TINYFLEET_PREFIX_BUFFER_SIZE];
  uint8_t health_scratch[kHealthScratchLen];
  BundleInfo table;
  Status load_status = Status::InvalidState;

  void SetUp() override { tflmdouble::invoke_clock = &clock; }
  void TearDown() override { tflmdouble::invoke_clock = nullptr; }

  // What a shell does at boot (read the running model, load it) and then in the trial (replay the vectors).
  HealthOutcome boot_and_check(RunningDevice& d, TflmInference& port) {
    load_status = tflm::load_running_model(port, d.flash, d.crypto, d.boot, scratch, sizeof scratch, table, model,
                                           sizeof model);
    return run_health_vectors(d.flash, FlashArea::Bank0, health_contract(table), port, health_scratch);
  }
};

}  // namespace

TEST_F(Trial, TheRunningBundlesModelPassesItsGoldenVectors) {
  const DoubleModel m = tflmdouble::contract_model();
  RunningDevice d(m, m);
  TflmInference port(clock, ops, arena, sizeof arena);
  const HealthOutcome h = boot_and_check(d, port);
  EXPECT_EQ(h.reason, Reason::None);
  EXPECT_EQ(h.vectors, 6u);
  EXPECT_EQ(h.max_latency_us, 3000u);
  EXPECT_EQ(h.max_arena_bytes, 1056u);
  EXPECT_EQ(load_status, Status::Ok);
  // The bytes loaded are the model component's, byte for byte.
  EXPECT_EQ(Bytes(model, model + sizeof m), tflmdouble::model_bytes(m));
}

TEST_F(Trial, EachPortFailureBecomesTheHealthChecksReason) {
  const DoubleModel good = tflmdouble::contract_model();
  {
    SCOPED_TRACE("AllocateTensors fails: the arena is too small");
    RunningDevice d(good, good);
    TflmInference port(clock, ops, arena, 1000);
    const HealthOutcome h = boot_and_check(d, port);
    EXPECT_EQ(load_status, Status::BufferTooSmall);
    EXPECT_EQ(port.load_error(), LoadError::AllocateFailed);
    EXPECT_EQ(h.reason, Reason::HealthInference);
    EXPECT_EQ(h.vectors, 0u);
  }
  {
    SCOPED_TRACE("wrong input type");
    DoubleModel m = good;
    m.input.type = kTfLiteUInt8;
    RunningDevice d(m, good);
    TflmInference port(clock, ops, arena, sizeof arena);
    EXPECT_EQ(boot_and_check(d, port).reason, Reason::HealthInference);
    EXPECT_EQ(port.load_error(), LoadError::InputType);
  }
  {
    SCOPED_TRACE("wrong output shape");
    DoubleModel m = good;
    m.output.dims[0] = 3;
    RunningDevice d(m, good);
    TflmInference port(clock, ops, arena, sizeof arena);
    EXPECT_EQ(boot_and_check(d, port).reason, Reason::HealthInference);
    EXPECT_EQ(port.load_error(), LoadError::OutputShape);
  }
  {
    SCOPED_TRACE("Invoke fails at the third vector");
    DoubleModel m = good;
    m.fail_invoke_at = 2;
    RunningDevice d(m, good);
    TflmInference port(clock, ops, arena, sizeof arena);
    const HealthOutcome h = boot_and_check(d, port);
    EXPECT_EQ(h.reason, Reason::HealthInference);
    EXPECT_EQ(h.detail0, 2u);
    EXPECT_EQ(h.vectors, 2u);
  }
  {
    SCOPED_TRACE("outputs disagree with the golden vectors");
    DoubleModel m = good;
    m.bias = 1;
    RunningDevice d(m, good);
    TflmInference port(clock, ops, arena, sizeof arena);
    const HealthOutcome h = boot_and_check(d, port);
    EXPECT_EQ(h.reason, Reason::HealthOutputMismatch);
    EXPECT_EQ(h.detail0, 0u);
  }
  {
    SCOPED_TRACE("slower than the manifest's 50 ms");
    DoubleModel m = good;
    m.invoke_ms = 51;
    RunningDevice d(m, m);
    TflmInference port(clock, ops, arena, sizeof arena);
    const HealthOutcome h = boot_and_check(d, port);
    EXPECT_EQ(h.reason, Reason::HealthLatency);
    EXPECT_EQ(h.detail0, 51000u);
    EXPECT_EQ(h.detail1, 50000u);
  }
  {
    SCOPED_TRACE("more arena than the manifest's 20,000 B of peak RAM");
    DoubleModel m = good;
    m.persistent_bytes = 20000;
    RunningDevice d(m, m);
    TflmInference port(clock, ops, arena, sizeof arena);
    const HealthOutcome h = boot_and_check(d, port);
    EXPECT_EQ(h.reason, Reason::HealthRam);
    EXPECT_EQ(h.detail0, 20000u + 32u);
    EXPECT_EQ(h.detail1, 20000u);
  }
}

TEST_F(Trial, NoModelIsReadFromABankThatIsNotTheMetadatasImageOrTooLarge) {
  const DoubleModel m = tflmdouble::contract_model();
  RunningDevice d(m, m);
  auto read = [&](const BootDecision& boot, size_t cap) {
    return tflm::read_running_model(d.flash, d.crypto, boot, scratch, sizeof scratch, table, model, cap);
  };
  BootDecision other = d.boot;
  other.record.images[0].prefix_sha256[0] ^= 1;
  EXPECT_EQ(read(other, sizeof model), 0u);
  other = d.boot;
  other.bank = 1;  // erased bank
  other.record.images[1] = d.boot.record.images[0];
  EXPECT_EQ(read(other, sizeof model), 0u);
  other.bank = 2;  // no such bank
  EXPECT_EQ(read(other, sizeof model), 0u);
  EXPECT_EQ(read(d.boot, sizeof(DoubleModel) - 1), 0u);
  EXPECT_EQ(read(d.boot, sizeof(DoubleModel)), sizeof(DoubleModel));
}

TEST_F(Trial, ABankWhoseModelCannotBeReadLeavesNoModelFromBefore) {
  const DoubleModel m = tflmdouble::contract_model();
  RunningDevice d(m, m);
  TflmInference port(clock, ops, arena, sizeof arena);
  ASSERT_EQ(boot_and_check(d, port).reason, Reason::None);
  d.boot.record.images[0].prefix_sha256[5] ^= 0x10;  // the metadata names another image
  const HealthOutcome h = boot_and_check(d, port);
  EXPECT_EQ(load_status, Status::NotFound);
  EXPECT_FALSE(port.loaded());
  EXPECT_EQ(h.reason, Reason::HealthInference);
}
