// libFuzzer target: the health-vectors decoder and replay (health.h, run_health_vectors) over a component
// written into a bank of the host flash emulator, under a contract and a model behaviour taken from the input
// (support/health_input.h). Besides memory safety: the replay feeds the model exactly the stored inputs, in
// order, with the contract's tensor sizes; it passes only after replaying every vector the header counts with
// outputs identical to the stored ones and latency and arena within the contract; a failure names the first
// vector or limit that failed.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "agent_harness.h"
#include "support/health_input.h"
#include "support/require.h"

using namespace tinyfleet;
using fuzzsupport::require;

namespace {

// The test model (agent_harness.h) that checks what it is given against the bank.
class CheckingModel final : public Inference {
 public:
  CheckingModel(const std::vector<uint8_t>& bank, const fuzzsupport::HealthInput& in) : bank_(bank), in_(in) {}
  uint32_t calls = 0;
  int first_mismatch = -1;
  Status run(const uint8_t* input, size_t input_len, uint8_t* output, size_t output_len,
             InferenceResult& r) override {
    const HealthContract& k = in_.contract;
    require(input_len == k.input_bytes && output_len == k.output_bytes, "the model gets the contract's tensor sizes");
    const size_t at = k.vectors_offset + 16 + static_cast<size_t>(calls) * (input_len + output_len);
    require(at + input_len + output_len <= bank_.size(), "a replayed vector lies in the bank");
    require(std::memcmp(input, bank_.data() + at, input_len) == 0, "the model gets the stored inputs, in order");
    const std::vector<uint8_t> out = agenttest::model_output(input, input_len, output_len);
    std::memcpy(output, out.data(), output_len);
    if (first_mismatch < 0 && std::memcmp(out.data(), bank_.data() + at + input_len, output_len) != 0) {
      first_mismatch = static_cast<int>(calls);
    }
    ++calls;
    r.latency_us = in_.latency_us;
    r.arena_high_water = in_.arena_bytes;
    return Status::Ok;
  }

 private:
  const std::vector<uint8_t>& bank_;
  const fuzzsupport::HealthInput& in_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  host::FlashEmulator flash(fuzzsupport::health_layout());
  const fuzzsupport::HealthInput in = fuzzsupport::load_health_input(data, size, flash);
  const std::vector<uint8_t>& bank = flash.raw(FlashArea::Bank0);
  CheckingModel model(bank, in);
  static uint8_t scratch[kHealthScratchLen];
  const HealthOutcome o = run_health_vectors(flash, FlashArea::Bank0, in.contract, model, scratch);

  const uint8_t* head = bank.data() + in.contract.vectors_offset;
  const uint32_t count = load_u16le(head + 6);
  require(o.vectors == model.calls && (o.vectors == 0 || (o.vectors <= count && count <= 64)),
          "every replayed vector is counted, and no more than the header's count (at most 64)");
  const uint64_t max_latency_us = static_cast<uint64_t>(in.contract.max_latency_ms) * 1000u;
  const bool within = in.latency_us <= max_latency_us && in.arena_bytes <= in.contract.peak_ram_bytes;
  if (o.passed()) {
    require(o.vectors == count && count >= 1, "a pass replayed every vector");
    require(model.first_mismatch < 0 && within, "a pass saw identical outputs within the limits");
  }
  if (o.reason == Reason::HealthOutputMismatch) {
    require(model.first_mismatch >= 0 && o.detail0 == static_cast<uint32_t>(model.first_mismatch) &&
                o.vectors == o.detail0 + 1,
            "a mismatch names the first vector whose output differs");
  }
  if (o.reason == Reason::HealthLatency) {
    require(in.latency_us > max_latency_us, "a latency failure exceeded the limit");
  }
  if (o.reason == Reason::HealthRam) require(in.arena_bytes > in.contract.peak_ram_bytes, "a RAM failure exceeded it");
  if (in.contract.feature_extractor == FeatureExtractorId::Unknown) {
    require(o.reason == Reason::HealthFeatureExtractor && model.calls == 0,
            "a bundle whose feature extractor this firmware lacks fails before the model runs");
  }
  if (o.vectors > 0) require(o.max_latency_us == in.latency_us && o.max_arena_bytes == in.arena_bytes, "maxima seen");
  return 0;
}
