#include "tinyfleet/health.h"

#include <cstring>

#include "tinyfleet/bytes.h"

namespace tinyfleet {

HealthContract health_contract(const BundleInfo& info) {
  HealthContract k;
  const int idx = info.find(ComponentType::HealthVectors);
  if (idx >= 0) {
    k.has_vectors = true;
    k.vectors_offset = info.components[idx].offset;
    k.vectors_length = info.components[idx].length;
  }
  k.feature_extractor = find_feature_extractor(info.manifest.feature_extractor_version);
  k.input_bytes = info.manifest.input.nbytes();
  k.output_bytes = info.manifest.output.nbytes();
  k.max_latency_ms = info.manifest.max_latency_ms;
  k.peak_ram_bytes = info.manifest.peak_ram_bytes;
  return k;
}

HealthOutcome run_health_vectors(Flash& flash, FlashArea bank, const HealthContract& k, Inference& inference,
                                 uint8_t* scratch) {
  uint8_t* const input = scratch;
  uint8_t* const expected = scratch + TINYFLEET_MAX_TENSOR_BYTES;
  uint8_t* const actual = scratch + 2 * TINYFLEET_MAX_TENSOR_BYTES;
  HealthOutcome out;
  if (k.feature_extractor == FeatureExtractorId::Unknown) {
    out.reason = Reason::HealthFeatureExtractor;
    return out;
  }
  if (!k.has_vectors) return out;
  uint8_t head[16];
  if (k.vectors_length < 16 || flash.read(bank, k.vectors_offset, head, 16) != Status::Ok) return out;
  if (std::memcmp(head, "TFHV", 4) != 0 || load_u16le(head + 4) != 1) return out;
  const uint32_t count = load_u16le(head + 6);
  const uint32_t nin = load_u32le(head + 8);
  const uint32_t nout = load_u32le(head + 12);
  if (count < 1 || count > 64 || nin < 1 || nout < 1 || nin > TINYFLEET_MAX_TENSOR_BYTES ||
      nout > TINYFLEET_MAX_TENSOR_BYTES || nin != k.input_bytes || nout != k.output_bytes ||
      static_cast<uint64_t>(count) * (nin + nout) + 16 != k.vectors_length) {
    return out;
  }
  const uint64_t max_latency_us = static_cast<uint64_t>(k.max_latency_ms) * 1000u;
  uint32_t pos = k.vectors_offset + 16;
  for (uint32_t i = 0; i < count; ++i) {
    if (flash.read(bank, pos, input, nin) != Status::Ok ||
        flash.read(bank, pos + nin, expected, nout) != Status::Ok) {
      return out;
    }
    pos += nin + nout;
    InferenceResult r;
    if (inference.run(input, nin, actual, nout, r) != Status::Ok) {
      out.detail0 = i;
      return out;
    }
    out.vectors = i + 1;
    if (r.latency_us > out.max_latency_us) out.max_latency_us = r.latency_us;
    if (r.arena_high_water > out.max_arena_bytes) out.max_arena_bytes = r.arena_high_water;
    if (std::memcmp(actual, expected, nout) != 0) {
      out.reason = Reason::HealthOutputMismatch;
      out.detail0 = i;
      return out;
    }
    if (r.latency_us > max_latency_us) {
      out.reason = Reason::HealthLatency;
      out.detail0 = r.latency_us;
      out.detail1 = static_cast<uint32_t>(max_latency_us > 0xFFFFFFFFu ? 0xFFFFFFFFu : max_latency_us);
      return out;
    }
    if (r.arena_high_water > k.peak_ram_bytes) {
      out.reason = Reason::HealthRam;
      out.detail0 = r.arena_high_water;
      out.detail1 = k.peak_ram_bytes;
      return out;
    }
  }
  out.reason = Reason::None;
  return out;
}

}  // namespace tinyfleet
