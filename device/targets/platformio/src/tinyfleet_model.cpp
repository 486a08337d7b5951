// The esp32s3 environment's model runner: the TFLite Micro port (device/ports/tflm) over static buffers,
// loaded with the running bundle's model after boot selection (esp32s3::Config::prepare_inference). The
// product provides the op resolver (tinyfleet_app.h) and may size the buffers with compile definitions.
#include "tinyfleet_model.h"

#include <new>

#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
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

using tinyfleet::Status;
using tinyfleet::tflm::TflmInference;

alignas(16) uint8_t g_arena[TINYFLEET_TFLM_ARENA_BYTES];
alignas(16) uint8_t g_model[TINYFLEET_TFLM_MODEL_BYTES];
uint8_t g_prefix[TINYFLEET_PREFIX_BUFFER_SIZE];
tinyfleet::BundleInfo g_table;

// The agent runs the model from its tasks (a trial's health check) and the application from its sensing
// task: one mutex keeps them out of the interpreter at the same time.
class LockedModel final : public tinyfleet::Inference {
 public:
  LockedModel() : port_(tinyfleet::esp32s3::clock(), tinyfleet_app_ops(), g_arena, sizeof g_arena) {
    lock_ = xSemaphoreCreateMutexStatic(&lock_storage_);
  }
  Status run(const uint8_t* input, size_t input_len, uint8_t* output, size_t output_len,
             tinyfleet::InferenceResult& result) override {
    xSemaphoreTake(lock_, portMAX_DELAY);
    const Status s = port_.run(input, input_len, output, output_len, result);
    xSemaphoreGive(lock_);
    return s;
  }
  Status prepare(tinyfleet::Flash& flash, tinyfleet::Crypto& crypto, const tinyfleet::BootDecision& boot) {
    xSemaphoreTake(lock_, portMAX_DELAY);
    const Status s = tinyfleet::tflm::load_running_model(port_, flash, crypto, boot, g_prefix, sizeof g_prefix,
                                                         g_table, g_model, sizeof g_model);
    if (s == Status::Ok) {
      ESP_LOGI("tinyfleet", "model of bank %u loaded: arena %u B", boot.bank,
               static_cast<unsigned>(port_.arena_used()));
    } else {
      ESP_LOGE("tinyfleet", "model of bank %u not loaded: %s (check %u)", boot.bank, tinyfleet::status_name(s),
               static_cast<unsigned>(port_.load_error()));
    }
    xSemaphoreGive(lock_);
    return s;
  }

 private:
  TflmInference port_;
  StaticSemaphore_t lock_storage_;
  SemaphoreHandle_t lock_ = nullptr;
};

alignas(LockedModel) uint8_t g_model_storage[sizeof(LockedModel)];
LockedModel* g_locked = nullptr;

LockedModel& model() {
  if (g_locked == nullptr) g_locked = new (g_model_storage) LockedModel();
  return *g_locked;
}

}  // namespace

tinyfleet::Inference& tinyfleet_model_inference() { return model(); }

void tinyfleet_model_prepare(tinyfleet::Flash& flash, tinyfleet::Crypto& crypto, const tinyfleet::BootDecision& boot) {
  model().prepare(flash, crypto, boot);
}
