#include "running_model.h"

#include "tinyfleet/running_bundle.h"

namespace tinyfleet::tflm {

size_t read_running_model(Flash& flash, Crypto& crypto, const BootDecision& boot, uint8_t* scratch, size_t scratch_len,
                          BundleInfo& table, uint8_t* model, size_t cap) {
  RunningBundle running;
  if (boot.bank > 1 ||
      !running.load(flash, crypto, boot.bank, boot.record.images[boot.bank], scratch, scratch_len, table)) {
    return 0;
  }
  return RunningBundle::read_component(flash, boot.bank, table, ComponentType::Model, model, cap);
}

Status load_running_model(TflmInference& inference, Flash& flash, Crypto& crypto, const BootDecision& boot,
                          uint8_t* scratch, size_t scratch_len, BundleInfo& table, uint8_t* model, size_t cap) {
  const size_t len = read_running_model(flash, crypto, boot, scratch, scratch_len, table, model, cap);
  if (len == 0) {
    inference.unload();
    return Status::NotFound;
  }
  return inference.load(model, len, table.manifest);
}

}  // namespace tinyfleet::tflm
