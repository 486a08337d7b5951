// The STM32L476 application loop (device/apps/stm32l4/application.h) on the Cortex-M4 under QEMU, with the
// real agent on RAM-backed flash provisioned with tests/vectors' valid-stm32l4.tfb, and the real TFLite Micro
// Inference port (device/ports/tflm) over a static arena. TFLite Micro itself is not on this machine: the
// port runs the host tests' interpreter double (tflm_interpreter_double.h: a model record of the test's own
// with the bundle's tensor contract, outputs a fixed function of the input, each Invoke 3 ms on the test's
// clock). The transport, the sensor and the feature extractor are the test's (the product's in the image).
#include <cstring>
#include <new>

#include "application.h"
#include "device_fixture.h"
#include "tflm_inference.h"
#include "tflm_interpreter_double.h"
#include "tinytest.h"
#include "tinyfleet/agent.h"
#include "vectors_data.h"

using namespace tinyfleet;
using namespace tftest;

namespace {

constexpr Layout kLayout = {4096, 2, 8, 0xFF};

struct TestPower final : Power {
  uint32_t reboots = 0;
  uint8_t battery_pct() override { return 80; }
  void request_reboot() override { ++reboots; }
};

// Records what the agent sends; the first poll brings the connection up.
struct TestTransport final : app::Transport {
  bool up = false;
  uint32_t telemetry = 0;
  uint32_t subscribes = 0;
  void send(const Action& a) override {
    if (a.type == ActionType::Subscribe) ++subscribes;
    if (a.type == ActionType::Publish && a.topic_kind == ActionTopic::Telemetry) ++telemetry;
    TT_EXPECT(a.type != ActionType::RunHealthCheck && a.type != ActionType::Reboot);  // the relay keeps those
  }
  void poll(Agent& agent) override {
    if (up) return;
    up = true;
    agent.on_connection_up();
  }
};

// 32 frames per read, channel c of frame k: 100 * (c + 1) + k % 7 counts.
struct TestSensor final : app::Sensor {
  uint32_t frames = 0;
  uint32_t read(int16_t* out, uint32_t max_frames, uint16_t channels) override {
    const uint32_t n = max_frames < 32 ? max_frames : 32;
    for (uint32_t k = 0; k < n; ++k, ++frames)
      for (uint16_t c = 0; c < channels; ++c) out[k * channels + c] = static_cast<int16_t>(100 * (c + 1) + frames % 7);
    return n;
  }
  bool temperature(int16_t& temp_q8) override {
    temp_q8 = 25 * 256;
    return true;
  }
};

// The test's extractor: the latest len / channels frames, each calibrated sample's bits 4..11 as one byte.
struct TestFeatures final : app::Features {
  int16_t frames[192];
  Status extract(const Agent& agent, uint8_t* out, size_t len) override {
    const uint16_t channels = agent.calibration().channel_count;
    if (channels == 0 || len % channels != 0 || len > sizeof frames / sizeof frames[0]) return Status::InvalidArgument;
    if (!agent.latest_frames(frames, static_cast<uint32_t>(len / channels))) return Status::NotFound;
    for (size_t i = 0; i < len; ++i) out[i] = static_cast<uint8_t>(frames[i] >> 4);
    return Status::Ok;
  }
};

struct NoOps final : tflite::MicroOpResolver {
  void operator delete(void*) {}
};

// The double's model record with the tensor contract of `m` (as TFLM would find it in the bundle's model).
tflmdouble::DoubleModel contract_of(const Manifest& m) {
  tflmdouble::DoubleModel d;
  const TensorContract* k[2] = {&m.input, &m.output};
  tflmdouble::DoubleTensor* t[2] = {&d.input, &d.output};
  for (int i = 0; i < 2; ++i) {
    t[i]->type = tflm::tflite_type(k[i]->dtype);
    t[i]->rank = k[i]->rank;
    for (uint8_t r = 0; r < k[i]->rank; ++r) t[i]->dims[r] = static_cast<int32_t>(k[i]->shape[r]);
    t[i]->scale = k[i]->scale;
    t[i]->zero_point = k[i]->zero_point;
  }
  return d;
}

const uint8_t* component(const Image& image, ComponentType type, uint32_t& len) {
  for (uint8_t c = 0; c < image.info.component_count; ++c) {
    const ComponentEntry& e = image.info.components[c];
    if (e.type == type) {
      len = e.length;
      return image.bytes + e.offset;
    }
  }
  len = 0;
  return nullptr;
}

// One device: flash, ports, the TFLM port with the double's model loaded, the agent and the application.
struct Device {
  tflmdouble::StepClock clock;
  TestPower power;
  TestTransport transport;
  TestSensor sensor;
  TestFeatures features;
  NoOps ops;
  TrustedKey key;
  AgentConfig cfg;
  alignas(16) uint8_t arena[4096];
  alignas(16) uint8_t model_bytes[sizeof(tflmdouble::DoubleModel)];
  uint8_t input[192];
  uint8_t output[4];
  int16_t ring[1024];
  tflmdouble::DoubleModel model_record;
};

Device g_dev;
alignas(tflm::TflmInference) uint8_t g_model_storage[sizeof(tflm::TflmInference)];
alignas(app::ActionRelay) uint8_t g_relay_storage[sizeof(app::ActionRelay)];
alignas(Agent) uint8_t g_agent_storage[sizeof(Agent)];
alignas(app::Application) uint8_t g_app_storage[sizeof(app::Application)];

struct Running {
  ram::RamFlash* flash;
  tflm::TflmInference* model;
  Agent* agent;
  app::Application* app;
};

// Provisions `provisioned` (and, with `trial`, installs `trial` as the trial), boots, loads the double's model
// for the booted bundle's contract and starts the application on the boot decision.
bool start(Device& d, const Image& provisioned, const Image* trial, BootDecision& decision, Running& r) {
  ram::RamFlash& flash = fresh_flash(kLayout);
  r.flash = &flash;
  d = Device{};
  d.key.der = tfvec::kKeys[0].der;  // key A: signs every valid vector
  d.key.der_len = tfvec::kKeys[0].der_len;
  compute_key_id(crypto(), d.key);
  d.cfg.device_id = "dev-0001";
  d.cfg.hardware_class = "stm32l4";
  d.cfg.keys = &d.key;
  d.cfg.key_count = 1;
  d.clock.ms = 5000;
  tflmdouble::invoke_clock = &d.clock;
  BootSelector selector(flash, crypto(), 3);
  if (!TT_EXPECT_STATUS(write_image(flash, crypto(), 0, provisioned, 4096), Status::Ok) ||
      !TT_EXPECT_STATUS(selector.provision(0, provisioned.desc), Status::Ok)) {
    return false;
  }
  if (trial != nullptr && !TT_EXPECT_STATUS(install_update(flash, crypto(), selector, *trial, 4096), Status::Ok)) {
    return false;
  }
  if (!TT_EXPECT_STATUS(selector.select(decision), Status::Ok)) return false;
  const Image& booted = trial != nullptr ? *trial : provisioned;

  r.model = new (g_model_storage) tflm::TflmInference(d.clock, d.ops, d.arena, sizeof d.arena);
  d.model_record = contract_of(booted.info.manifest);
  std::memcpy(d.model_bytes, &d.model_record, sizeof d.model_record);
  if (!TT_EXPECT_STATUS(r.model->load(d.model_bytes, sizeof d.model_bytes, booted.info.manifest), Status::Ok)) {
    return false;
  }
  auto* relay = new (g_relay_storage) app::ActionRelay(d.transport);
  r.agent = new (g_agent_storage) Agent(d.cfg, AgentPorts{flash, crypto(), d.power, d.clock, *r.model, *relay});
  r.agent->attach_sample_ring(d.ring, sizeof d.ring / sizeof d.ring[0]);
  app::AppConfig config;
  config.hop_frames = 32;
  config.tick_ms = 1000;
  r.app = new (g_app_storage) app::Application(*r.agent, *relay, *r.model, d.transport, d.sensor, d.features,
                                               d.power, d.clock, d.input, sizeof d.input, d.output, sizeof d.output,
                                               config);
  r.app->set_model(booted.info.manifest.input.nbytes(), booted.info.manifest.output.nbytes());
  r.app->boot(decision);
  return true;
}

}  // namespace

TT_TEST(Stm32l4App, SamplesRunTheModelThroughTheAgentsInferencePath) {
  Device& d = g_dev;
  BootDecision decision;
  Running r{};
  TT_ASSERT(start(d, old_image(), nullptr, decision, r));
  TT_EXPECT(!decision.trial);
  TT_EXPECT_EQ(r.agent->calibration().channel_count, 3);
  TT_EXPECT_EQ(r.model->arena_used(), tflmdouble::arena_need(d.model_record));

  // Hops of 32 frames against a 64-frame window: the first hop finds the ring short, every later one runs.
  for (int i = 0; i < 8; ++i) r.app->step();
  TT_EXPECT(d.transport.up);
  TT_EXPECT(d.transport.subscribes >= 1);
  TT_EXPECT_EQ(d.sensor.frames, 256u);
  TT_EXPECT_EQ(r.app->counters().window_short, 1u);
  TT_EXPECT_EQ(r.app->counters().inferences, 7u);
  TT_EXPECT_EQ(r.app->counters().extract_failed + r.app->counters().model_failed, 0u);
  TT_EXPECT_EQ(r.agent->drift().inference_count(), 7u);
  TT_EXPECT_EQ(r.agent->drift().sample_count(), 256u);  // frames
  // The port's clock around Invoke (3 ms each), as the latency histogram's bucket holding 3,000 us reports it.
  TT_EXPECT_EQ(r.agent->drift().latency_p99_us(), latency_bucket_max(latency_bucket(3000)));

  // The last decision is the bundle's thresholds on what the model computed from the latest window.
  uint8_t input[192];
  TT_ASSERT_STATUS(d.features.extract(*r.agent, input, sizeof input), Status::Ok);
  TT_EXPECT(std::memcmp(input, d.input, sizeof input) == 0);
  uint8_t want_out[4];
  tflmdouble::write_output(d.model_record, input, sizeof input, want_out, sizeof want_out);
  TT_EXPECT(std::memcmp(want_out, d.output, sizeof want_out) == 0);
  uint32_t th_len = 0;
  const uint8_t* th = component(old_image(), ComponentType::Thresholds, th_len);
  Thresholds thresholds;
  TT_ASSERT_STATUS(parse_thresholds(th, th_len, thresholds), Status::Ok);
  const Decision want = decide(thresholds, want_out, sizeof want_out, old_image().info.manifest.output.dtype);
  TT_EXPECT_EQ(r.app->counters().last.winner, want.winner);
  TT_EXPECT_EQ(r.app->counters().last.alarm, want.alarm);
  TT_EXPECT_EQ(r.app->counters().last.confidence, want.confidence);

  // A telemetry period later the tick publishes the window the inferences were counted in, and a new one starts.
  TT_EXPECT_EQ(d.transport.telemetry, 0u);
  d.clock.ms += 60000;
  r.app->step();
  TT_EXPECT_EQ(d.transport.telemetry, 1u);
  TT_EXPECT(r.agent->drift().inference_count() <= 1u);  // the new window: at most this pass's inference
  TT_EXPECT_EQ(d.power.reboots, 0u);
  TT_EXPECT_EQ(r.app->counters().health_checks, 0u);  // a confirmed bank runs no health check
}

TT_TEST(Stm32l4App, ATrialWhoseModelDisagreesWithItsVectorsIsRevertedFromTheLoop) {
  Device& d = g_dev;
  BootDecision decision;
  Running r{};
  // The trial's golden vectors expect {i, 255 - i, 0, 1}; the double computes something else.
  TT_ASSERT(start(d, old_image(), &new_image(), decision, r));
  TT_EXPECT(decision.trial);
  TT_EXPECT_EQ(r.app->counters().health_checks, 1u);  // asked for by on_boot, run by the loop after the event
  TT_EXPECT_EQ(d.power.reboots, 1u);                  // the revert's reboot, through the relay
  TT_EXPECT(r.agent->state() == AgentState::Rebooting);
  TT_EXPECT(d.model_record.fail_invoke_at < 0);        // the model ran: its outputs, not an error, failed the trial
  // The agent reverted before asking for the reboot: the next boot runs the provisioned bundle.
  BootDecision after;
  BootSelector selector(*r.flash, crypto(), 3);
  TT_ASSERT_STATUS(selector.select(after), Status::Ok);
  TT_EXPECT(!after.trial);
  TT_EXPECT_EQ(after.bank, 0);
  TT_EXPECT(after.record.state == BootState::Reverted);  // the trial in bank 1 failed
}

TT_TEST(Stm32l4App, WithoutAModelTheLoopDecidesNothing) {
  Device& d = g_dev;
  BootDecision decision;
  Running r{};
  TT_ASSERT(start(d, old_image(), nullptr, decision, r));
  r.model->unload();  // as after a bank whose model did not load: the port runs nothing (InvalidState)
  for (int i = 0; i < 4; ++i) r.app->step();
  TT_EXPECT_EQ(r.app->counters().window_short, 1u);
  TT_EXPECT_EQ(r.app->counters().model_failed, 3u);
  TT_EXPECT_EQ(r.app->counters().inferences, 0u);
  TT_EXPECT_EQ(r.agent->drift().inference_count(), 0u);
  TT_EXPECT_EQ(r.agent->drift().sample_count(), 128u);  // the samples are still calibrated and counted
  // Tensor sizes the application's buffers cannot hold: no inference either, the model is not even asked.
  TT_ASSERT_STATUS(r.model->load(d.model_bytes, sizeof d.model_bytes, old_image().info.manifest), Status::Ok);
  r.app->set_model(sizeof d.input + 1, sizeof d.output);
  for (int i = 0; i < 2; ++i) r.app->step();
  TT_EXPECT_EQ(r.app->counters().model_failed, 5u);
  TT_EXPECT_EQ(r.app->counters().inferences, 0u);
}
