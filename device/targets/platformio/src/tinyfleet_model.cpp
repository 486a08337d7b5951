// The esp32s3 environment's model runner: the TFLite Micro port (device/ports/tflm) over static buffers,
// loaded with the running bundle's model after boot selection (esp32s3::Config::prepare_inference). The
// product provides the op resolver (tinyfleet_app.h) and may size the buffers with build flags.
#include "tinyfleet_model.h"

#include <new>

#include "esp_log.h"
#include "running_model.h"
#include "tinyfleet_app.h"

// Tensor arena: at least the bundles' manifest arena_bytes (measured by the model gate in TFLite Micro).
#ifndef TINYFLEET_TFLM_ARENA_BYTES
#define TINYFLEET_TFLM_ARENA_BYTES (64 * 1024)
#endif
// Largest model component: the model is copied from the running bank into RAM and runs from there.
#ifndef TINYFLEET_TFLM_MODEL_BYTES
#define TINYFLEET_TFLM_MODEL_BYTES (128 * 1024)
#endif

namespace {

alignas(16) uint8_t g_arena[TINYFLEET_TFLM_ARENA_BYTES];
alignas(16) uint8_t g_model[TINYFLEET_TFLM_MODEL_BYTES];
uint8_t g_prefix[TINYFLEET_PREFIX_BUFFER_SIZE];
tinyfleet::BundleInfo g_table;
alignas(tinyfleet::tflm::TflmInference) uint8_t g_inference_storage[sizeof(tinyfleet::tflm::TflmInference)];
tinyfleet::tflm::TflmInference* g_inference = nullptr;

}  // namespace

tinyfleet::Inference& tinyfleet_model_inference() {
  if (g_inference == nullptr) {
    g_inference = new (g_inference_storage) tinyfleet::tflm::TflmInference(
        tinyfleet::esp32s3::clock(), tinyfleet_app_ops(), g_arena, sizeof g_arena);
  }
  return *g_inference;
}

void tinyfleet_model_prepare(tinyfleet::Flash& flash, tinyfleet::Crypto& crypto, const tinyfleet::BootDecision& boot) {
  auto& inference = static_cast<tinyfleet::tflm::TflmInference&>(tinyfleet_model_inference());
  const tinyfleet::Status s = tinyfleet::tflm::load_running_model(inference, flash, crypto, boot, g_prefix,
                                                                  sizeof g_prefix, g_table, g_model, sizeof g_model);
  if (s == tinyfleet::Status::Ok) {
    ESP_LOGI("tinyfleet", "model of bank %u loaded: arena %u B", boot.bank, static_cast<unsigned>(inference.arena_used()));
  } else {
    ESP_LOGE("tinyfleet", "model of bank %u not loaded: %s (check %u)", boot.bank, tinyfleet::status_name(s),
             static_cast<unsigned>(inference.load_error()));
  }
}
